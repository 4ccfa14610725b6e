"""``weaver``: the router process. Parses flags, builds the core and its shells, runs.

This is the composition root: the only place that knows every layer.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import random
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from weavenet import __version__
from weavenet.core.errors import ConfigError
from weavenet.core.mesh.overlay import Overlay
from weavenet.core.mesh.router import Router, RouterConfig
from weavenet.core.overlay.sleeve_overlay import SleeveOverlay
from weavenet.core.peername import format_peer_name
from weavenet.io.identity import resolve_peer_name
from weavenet.io.ipam_config import parse_ipam_flags
from weavenet.io.ipam_shell import start_ipam
from weavenet.io.logs import setup_logging
from weavenet.io.mesh_tcp import MeshShell
from weavenet.io.pidfile import PidFile
from weavenet.io.store import Store

if TYPE_CHECKING:  # the data plane (pyroute2 and all) is imported only when a bridge is used
    from weavenet.io.sleeve_udp import SleeveShell

log = logging.getLogger("weavenet.weaver")


@dataclass(frozen=True)
class Options:
    name: str | None
    nickname: str
    host: str
    port: int
    password: str | None
    conn_limit: int
    discovery: bool
    trusted_subnets: str
    state_dir: Path
    http_addr: str
    status_addr: str
    metrics_addr: str
    resume: bool
    weave_bridge: str
    ipalloc_range: str
    ipalloc_default_subnet: str
    ipalloc_init: str
    peers: tuple[str, ...]


def _parse_subnets(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigError(f"invalid --trusted-subnets entry {part!r}: {exc}") from exc
    return tuple(nets)


def _initial_targets(opts: Options, store: Store) -> list[str]:
    if opts.resume:
        if opts.peers:
            raise ConfigError(
                "You must not specify an initial peer list in conjunction with --resume"
            )
        targets = store.load_targets() or []
        log.info("Restart/resume detected - using persisted peer list: %s", targets)
        return targets
    log.info("Launch detected - using supplied peer list: %s", list(opts.peers))
    return list(opts.peers)


def build_router(
    opts: Options, store: Store, name: int, now: float, overlay: Overlay | None = None
) -> Router:
    config = RouterConfig(
        name=name,
        nickname=opts.nickname,
        port=opts.port,
        password=opts.password.encode() if opts.password else None,
        discovery=opts.discovery,
        conn_limit=opts.conn_limit,
        trusted_subnets=_parse_subnets(opts.trusted_subnets),
    )
    router = Router(config, random.Random(), now, overlay)
    if config.password:
        log.info("Communication between peers via untrusted networks is encrypted.")
    else:
        log.info("Communication between peers is unencrypted.")
    log.info("Our name is %s(%s)", format_peer_name(name), opts.nickname)
    errors = router.connect(_initial_targets(opts, store), replace=True, now=now)
    if errors:
        raise ConfigError("; ".join(errors))
    return router


def _tune_gc() -> None:
    """The imported modules are permanent: keep the cyclic collector from rescanning
    them, and let it run less often (topology decoding allocates in bursts)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def _start_datapath(
    opts: Options, router: Router, shell: MeshShell, overlay: SleeveOverlay
) -> SleeveShell:
    """The kernel side comes first, so that a missing privilege fails the launch with the
    kernel's own error."""
    from weavenet.core.overlay.datapath import Datapath
    from weavenet.io.reconcile import prepare_bridge
    from weavenet.io.sleeve_udp import SleeveShell

    tap, fd = await asyncio.to_thread(prepare_bridge, opts.weave_bridge)
    datapath = Datapath(router.name, overlay)
    sleeve = SleeveShell(router, datapath, opts.host, opts.port, fd, shell.run_effects)
    shell.post_effects.append(sleeve.flush)
    shell.datapath = datapath
    log.info("Bridge %s with sleeve overlay on UDP %d (via %s)", opts.weave_bridge, opts.port, tap)
    return sleeve


async def serve(opts: Options) -> None:
    from weavenet.api.http import make_app, make_status_app, start_http

    loop = asyncio.get_running_loop()
    _tune_gc()
    store = Store(opts.state_dir)
    name = resolve_peer_name(opts.name, store, opts.state_dir)
    overlay = SleeveOverlay(name) if opts.weave_bridge else None
    router = build_router(opts, store, name, loop.time(), overlay)
    ipam_flags = (opts.ipalloc_range, opts.ipalloc_default_subnet, opts.ipalloc_init)
    ipam_settings = parse_ipam_flags(*ipam_flags, len(router.maker.direct_peers()))
    shell = MeshShell(router, opts.host, opts.port, store.save_targets)
    await shell.start()
    ipam = await start_ipam(ipam_settings, shell, store)
    sleeve = await _start_datapath(opts, router, shell, overlay) if overlay else None
    keeper, attachments = None, None
    if opts.weave_bridge:
        from weavenet.io.attachments import AttachmentKeeper

        release = ipam.release if ipam is not None else None  # contract C
        attachments = AttachmentKeeper(store, opts.weave_bridge, release)
        await attachments.reconcile()  # before the API answers: restored attachments first
        keeper = asyncio.create_task(attachments.run())
    runners = [await start_http(make_app(shell, ipam, attachments), opts.http_addr)]
    log.info("Listening for HTTP control messages on %s", opts.http_addr)
    for addr in filter(None, (opts.status_addr, opts.metrics_addr)):
        runners.append(await start_http(make_status_app(shell), addr))
        log.info("Listening for status+metrics requests on %s", addr)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("=== received SIGINT/SIGTERM ===")
    for runner in runners:
        await runner.cleanup()
    await shell.stop()
    if ipam is not None:
        ipam.close()
    if keeper is not None:
        keeper.cancel()
    if sleeve is not None:
        sleeve.close()
    store.close()


_FLAGS = [
    click.option("--name", default=None, help="peer name (MAC format); default: derived and kept"),
    click.option("--nickname", default=socket.gethostname(), show_default=True),
    click.option("--host", default="", help="listen address for the mesh port"),
    click.option("--port", default=6783, type=click.IntRange(1, 65535), show_default=True),
    click.option("--password", envvar="WEAVE_PASSWORD", default=None, help="encrypt the mesh"),
    click.option("--conn-limit", default=200, type=click.IntRange(0), show_default=True),
    click.option("--no-discovery", is_flag=True, help="do not connect to peers' peers"),
    click.option("--trusted-subnets", default="", help="comma-separated CIDRs"),
    click.option(
        "--state-dir", envvar="WEAVE_STATE_DIR", default="/var/lib/weave", show_default=True
    ),
    click.option("--http-addr", envvar="WEAVE_HTTP_ADDR", default="127.0.0.1:6784"),
    click.option("--status-addr", envvar="WEAVE_STATUS_ADDR", default=""),
    click.option("--metrics-addr", default=""),
    click.option("--resume", is_flag=True, help="reuse the persisted target list"),
    click.option(
        "--weave-bridge",
        default="",
        help="bridge for containers, with the sleeve overlay (weave launch passes 'weave');"
        " empty: control plane only",
    ),
    click.option("--ipalloc-range", default="", help="IPAM universe (CIDR); empty: IPAM off"),
    click.option("--ipalloc-default-subnet", default="", help="default: the --ipalloc-range"),
    click.option("--ipalloc-init", default="", help="consensus[=N], seed=NAME,... or observer"),
    click.option(
        "--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"])
    ),
    click.option("--version", "show_version", is_flag=True, help="print the version and exit"),
    click.option("--print-peer-name", is_flag=True, help="print the peer name and exit"),
    click.argument("peers", nargs=-1),
]


def _with_flags(func: Callable[..., None]) -> Callable[..., None]:
    for flag in reversed(_FLAGS):
        func = flag(func)
    return func


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@_with_flags
def weaver(**kw: object) -> None:
    """Run the weavenet router in the foreground."""
    if kw.pop("show_version"):
        click.echo(f"weave {__version__}")
        return
    setup_logging(str(kw.pop("log_level")))
    print_name = bool(kw.pop("print_peer_name"))
    kw["discovery"] = not kw.pop("no_discovery")
    kw["state_dir"] = Path(str(kw["state_dir"]))
    opts = Options(**kw)  # type: ignore[arg-type]
    if print_name:
        store = Store(opts.state_dir)
        click.echo(format_peer_name(resolve_peer_name(opts.name, store, opts.state_dir)))
        return
    shown = " ".join(
        f"{k.replace('_', '-')}:{'<redacted>' if k == 'password' else v}"
        for k, v in sorted(kw.items())
        if v not in (None, "", (), False)
    )
    log.info("Command line options: map[%s]", shown)
    log.info("weave  %s", __version__)
    with PidFile(opts.state_dir / "weaver.pid"):
        asyncio.run(serve(opts))


def main() -> None:
    try:
        weaver.main(standalone_mode=False)
    except click.ClickException as exc:
        print(f"weaver: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code or 1)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"weaver: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(130)


if __name__ == "__main__":
    main()
