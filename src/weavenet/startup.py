"""Start-up steps of the router's optional parts (CNI, the Docker proxy, plugin and event
watcher, the event-loop monitor) and ``Running``, what ``weaver`` started. The composition
root (daemon.py) calls them in order; each imports its part only when it is used.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import msgspec

from weavenet.io.loop_monitor import LoopMonitor
from weavenet.io.mesh_tcp import MeshShell
from weavenet.io.store import Store
from weavenet.options import Options

if TYPE_CHECKING:
    from aiohttp import web

    from weavenet.api.attach_http import AttachControl
    from weavenet.io.attachments import AttachmentKeeper
    from weavenet.io.cni_gc import CniCollector
    from weavenet.io.cni_kernel import CniKernel
    from weavenet.io.dns_listeners import DnsListeners
    from weavenet.io.dns_shell import DnsShell
    from weavenet.io.ipam_shell import IpamShell
    from weavenet.io.sleeve_udp import SleeveShell
    from weavenet.plugin.setup import DockerIntegration, KeeperHooks
    from weavenet.proxy.service import ProxyService

log = logging.getLogger("weavenet.weaver")


class Running(msgspec.Struct):
    """What serve() started, for the shutdown (None: not started)."""

    shell: MeshShell
    store: Store
    ipam: IpamShell | None = None
    dns: DnsShell | None = None
    listeners: DnsListeners | None = None
    sleeve: SleeveShell | None = None
    attachments: AttachControl | None = None
    keeper: asyncio.Task[None] | None = None
    cni: CniCollector | None = None
    cni_task: asyncio.Task[None] | None = None
    cni_kernel: CniKernel | None = None
    proxy: ProxyService | None = None
    hooks: KeeperHooks | None = None  # the keeper, for Docker's events
    docker: DockerIntegration | None = None
    monitor: LoopMonitor | None = None


def import_parts(opts: Options) -> None:
    """Import the parts this router will start, before its event loop runs: an import
    inside the loop is one long step (hundreds of ms) during which nothing else is
    served. Parts the options leave off are not imported at all, nor is Docker's client
    (aiohttp's client side) unless a Docker daemon's socket is there."""
    from weavenet.lean_import import lean_package

    lean_package("aiohttp")  # the server side only, until Docker's client needs the rest
    import weavenet.api.http  # aiohttp.web (prometheus_client comes with the first /metrics)
    import weavenet.io.ipam_shell

    if not opts.no_dns:
        import weavenet.api.dns_report
        import weavenet.io.dns_listeners
        import weavenet.io.dns_shell
    if opts.weave_bridge:
        import weavenet.io.attachments
        import weavenet.io.fast_sleeve
        import weavenet.io.fastdp
        import weavenet.io.reconcile  # the data plane: pyroute2
        import weavenet.io.sleeve_udp
    if opts.weave_bridge and opts.docker_api != "":
        import weavenet.plugin.setup  # the watcher and the plugin (aiohttp.web)
        from weavenet.io.docker_api import preload_client, socket_missing

        if opts.proxy:
            import weavenet.proxy.service  # noqa: F401
        if not socket_missing(opts.docker_api):
            preload_client()


def start_cni(opts: Options, run: Running) -> None:
    """The CNI plugin's netlink work (needs the bridge), the registry of CNI containers
    and the missed-DEL collector (need IPAM)."""
    if opts.weave_bridge:
        from weavenet.io.cni_kernel import CniKernel

        run.cni_kernel = CniKernel()
    if run.ipam is None:
        return
    from weavenet.core.cni_gc import GcPolicy
    from weavenet.io.cni_gc import CniCollector, parse_runtime

    sources = [parse_runtime(spec) for spec in opts.cni_runtimes]
    policy = GcPolicy(min_age=opts.cni_gc_min_age)
    run.cni = CniCollector(run.store, run.ipam.release, opts.cni_gc_period, policy)
    for source in sources:
        run.cni.add_source(source)
    if opts.cni_gc_period > 0:
        run.cni_task = asyncio.create_task(run.cni.run())
        log.info(
            "CNI GC every %gs using %s",
            opts.cni_gc_period,
            ", ".join(s.name for s in sources) or "no runtime (it frees nothing)",
        )


async def start_proxy(opts: Options, run: Running) -> None:
    """The Docker API proxy (--proxy); it wires containers through the attachments."""
    if not opts.proxy or opts.docker_api == "":  # '' turns the Docker integration off
        return
    if run.attachments is None:
        log.error("proxy: not started: the router has no bridge (give --weave-bridge)")
        return
    from weavenet.proxy.service import start_proxy

    run.proxy = await start_proxy(opts, opts.state_dir, run.ipam, run.attachments, run.listeners)


def keeper_hooks(keeper: AttachmentKeeper) -> KeeperHooks:
    from weavenet.plugin.setup import KeeperHooks

    return KeeperHooks(keeper.container_event, keeper.container_event, keeper.reconcile)


async def start_docker(opts: Options, run: Running) -> None:
    """Docker's event stream and, with --plugin, the weavemesh plugin (needs a bridge)."""
    if opts.docker_api == "" or not opts.weave_bridge:
        return
    from weavenet.plugin.setup import start_docker

    socket = opts.plugin_mesh_socket if opts.plugin else None
    run.docker = await start_docker(
        opts.docker_api, run.hooks, socket, opts.weave_bridge, run.ipam, run.dns, run.listeners
    )


def start_loop_monitor() -> LoopMonitor:
    """Time every event-loop step from here on, and probe timer lateness (/metrics)."""
    monitor = LoopMonitor().install()
    monitor.start_probe()
    return monitor


def with_loop_metrics(app: web.Application, run: Running) -> web.Application:
    """The loop monitor's metrics on the app's /metrics (its collector, and with it
    prometheus_client, made at the first scrape)."""
    from weavenet.api.http import REGISTRY_KEY
    from weavenet.api.metrics_registry import loop_collector

    if run.monitor is not None:
        app[REGISTRY_KEY].add(loop_collector(run.monitor))
    return app
