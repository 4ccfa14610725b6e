"""`weavenet-k8s`: the agent of the DaemonSet (arguments after `--` go to `weave launch`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys

import click

from weavenet.k8s.agent import Agent, AgentConfig


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--node-name",
    envvar="NODE_NAME",
    default=socket.gethostname(),
    show_default=True,
    help="this node's name (the DaemonSet passes spec.nodeName)",
)
@click.option(
    "--namespace",
    envvar="WEAVE_K8S_NAMESPACE",
    default="kube-system",
    show_default=True,
    help="where the ConfigMap and the Lease live",
)
@click.option(
    "--kubeconfig",
    envvar="KUBECONFIG",
    default=None,
    help="kubeconfig file; default: the pod's service account",
)
@click.option(
    "--http-addr",
    envvar="WEAVE_HTTP_ADDR",
    default="127.0.0.1:6784",
    show_default=True,
    help="the router's HTTP API",
)
@click.option(
    "--metrics-addr",
    default="127.0.0.1:6786",
    show_default=True,
    help="the agent's /metrics and /status ('' for none)",
)
@click.option(
    "--resync",
    type=float,
    default=5.0,
    show_default=True,
    help="seconds between reconciliations without a change",
)
@click.option(
    "--lease-seconds", type=int, default=15, show_default=True, help="duration of the reclaim Lease"
)
@click.argument("launch_args", nargs=-1, type=click.UNPROCESSED)
def main(
    node_name: str,
    namespace: str,
    kubeconfig: str | None,
    http_addr: str,
    metrics_addr: str,
    resync: float,
    lease_seconds: int,
    launch_args: tuple[str, ...],
) -> None:
    """Keep this node's weavenet router connected to the cluster's nodes and reclaim the
    addresses of deleted nodes."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    if resync <= 0 or lease_seconds <= 0:
        raise click.BadParameter("--resync and --lease-seconds must be positive")
    cfg = AgentConfig(
        node_name=node_name,
        namespace=namespace,
        kubeconfig=kubeconfig,
        http_addr=http_addr,
        metrics_addr=metrics_addr,
        launch_args=list(launch_args),
        resync=resync,
        lease_seconds=lease_seconds,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Agent(cfg).run())


if __name__ == "__main__":
    main()
