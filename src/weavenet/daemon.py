"""``weaver``: the router process. Parses flags, builds the core and its shells, runs.

This is the composition root: the only place that knows every layer.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from weavenet import __version__
from weavenet.core.errors import ConfigError
from weavenet.core.mesh.overlay import Overlay
from weavenet.core.mesh.router import Router, RouterConfig
from weavenet.core.overlay.fast_sleeve import FAST_SLEEVE_OVERLAY, FastSleeveOverlay
from weavenet.core.overlay.fastdp import FastdpOverlay
from weavenet.core.overlay.sleeve_overlay import SleeveOverlay
from weavenet.core.overlay.switch import OverlaySwitch, SubOverlay
from weavenet.core.peername import format_peer_name
from weavenet.io.identity import resolve_peer_name
from weavenet.io.ipam_config import parse_ipam_flags
from weavenet.io.ipam_shell import start_ipam
from weavenet.io.logs import setup_logging
from weavenet.io.mesh_tcp import MeshShell, ReportSection
from weavenet.io.pidfile import PidFile
from weavenet.io.store import Store
from weavenet.launch_ready import notify_ready
from weavenet.options import Options, expand_bool_flags, with_flags
from weavenet.startup import (
    Running,
    import_parts,
    keeper_hooks,
    start_cni,
    start_docker,
    start_loop_monitor,
    start_proxy,
    with_loop_metrics,
)

if TYPE_CHECKING:  # the data plane (pyroute2 and all) is imported only when a bridge is used
    from aiohttp import web

    from weavenet.io.dns_listeners import DnsListeners
    from weavenet.io.dns_shell import DnsShell
    from weavenet.io.ipam_shell import IpamShell
    from weavenet.io.sleeve_udp import SleeveShell

log = logging.getLogger("weavenet.weaver")


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
    """Once started: the imported modules are permanent, so keep the cyclic collector
    from rescanning them, and let it run less often (topology decoding allocates in
    bursts). The collector is off until here (main, and the `weave` CLI the router may
    be forked from); the start-up's few thousand garbage objects are frozen with the
    modules rather than paying a full collection of every object (~50 ms) to free them."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    gc.enable()


async def _start_datapath(
    opts: Options, router: Router, shell: MeshShell, overlay: OverlaySwitch
) -> SleeveShell:
    """The kernel side comes first, so that a missing privilege fails the launch with the
    kernel's own error."""
    from weavenet.core.overlay.datapath import Datapath
    from weavenet.io.reconcile import prepare_bridge
    from weavenet.io.sleeve_udp import SleeveShell

    fast = overlay.overlay_named(FAST_SLEEVE_OVERLAY)
    tap, fd = await asyncio.to_thread(prepare_bridge, opts.weave_bridge, fast is not None)
    datapath = Datapath.create(router.name, overlay)
    vnet = fast is not None
    sleeve = SleeveShell(router, datapath, opts.host, opts.port, fd, shell.overlay_activity, vnet)
    shell.post_effects.append(sleeve.flush)
    shell.sent_counters["sleeve"] = lambda: sleeve.sent_bytes
    shell.datapath = datapath
    log.info("Bridge %s with sleeve overlay on UDP %d (via %s)", opts.weave_bridge, opts.port, tap)
    if isinstance(fast, FastSleeveOverlay):
        from weavenet.io.fast_sleeve import start_fast_sleeve

        start_fast_sleeve(router, fast, datapath, sleeve, fd, opts.host, shell)
    if isinstance(overlay.overlays[0], FastdpOverlay):
        from weavenet.io.fastdp import start_fastdp

        await start_fastdp(
            router, overlay, datapath, opts.weave_bridge, tap, shell, sleeve.after_frames
        )
    return sleeve


async def _build_overlay(opts: Options, name: int) -> OverlaySwitch:
    """The overlay switch in preference order: fastdp (unless --no-fastdp), the fast
    sleeve (unless --no-fast-sleeve), sleeve."""
    sleeve = SleeveOverlay(name)
    overlays: list[SubOverlay] = [sleeve]
    if opts.fast_sleeve:
        overlays.insert(0, FastSleeveOverlay(port=opts.port + 2))
    if opts.fastdp:
        from weavenet.dataplane.netlink import DataplaneError
        from weavenet.dataplane.vxlan import check_mtu

        try:
            await asyncio.to_thread(check_mtu, opts.mtu)
        except DataplaneError as exc:
            raise ConfigError(str(exc)) from exc
        overlays.insert(0, FastdpOverlay(mtu=opts.mtu, port=opts.port + 1))
    return OverlaySwitch(overlays, sleeve)


async def _start_dns(
    opts: Options, router: Router, shell: MeshShell, universe: str | None, ipam: IpamShell | None
) -> tuple[DnsShell | None, DnsListeners | None]:
    if opts.no_dns:
        return None, None
    from weavenet.api.dns_report import dns_section, dns_status_section
    from weavenet.io.dns_listeners import DnsListeners, KernelBridge
    from weavenet.io.dns_shell import DnsSettings, start_dns

    settings = DnsSettings(
        domain=opts.dns_domain,
        ttl=opts.dns_ttl,
        fallback_timeout=opts.dns_fallback_timeout,
        resolv_conf=opts.resolv_conf,
        all_answers=opts.dns_all_answers,
        listen_address=opts.dns_listen_address or None,
        # clients we recurse for (besides loopback and every subnet a listener serves)
        allowed_networks=(universe,) if universe else (),
    )
    dns = await start_dns(
        router,
        settings,
        shell.run_effects,
        shell.wall_offset,
        add_ticker=shell.add_ticker,
        foreground=shell.foreground,  # queries go before the mesh's backlog
    )
    shell.sections.append(  # after IPAM: Go's order
        ReportSection("DNS", lambda: dns_section(dns), lambda: dns_status_section(dns))
    )
    listeners = (
        DnsListeners(dns, ipam, KernelBridge(opts.weave_bridge)) if opts.weave_bridge else None
    )
    return dns, listeners


async def _start_attachments(opts: Options, run: Running) -> None:
    """The router's attachments (restored ones first, before the API answers)."""
    from weavenet.io.attachments import AttachmentKeeper

    ipam, dns = run.ipam, run.dns

    def release(ident: str) -> None:  # container detached or gone for good (contract C)
        if ipam is not None:
            ipam.release(ident)
        if dns is not None:
            dns.delete_entries(container=ident)

    keeper = AttachmentKeeper(run.store, opts.weave_bridge, release)
    await keeper.reconcile()
    run.hooks = keeper_hooks(keeper)
    run.attachments = keeper
    if dns is not None:
        from weavenet.io.dns_attach import DnsAttachments

        with_dns = DnsAttachments(keeper, dns, run.listeners)
        await with_dns.restore()
        run.attachments = with_dns
    run.keeper = asyncio.create_task(keeper.run())


async def _start_http(opts: Options, run: Running) -> list[web.AppRunner]:
    from weavenet.api.http import make_app, make_status_app, start_http

    app = make_app(run.shell, run.ipam, run.attachments)
    if run.dns is not None:  # Go serves the DNS routes on the control API only
        from weavenet.api.dns_http import add_dns_routes

        add_dns_routes(app, run.dns)
    if run.cni is not None or run.cni_kernel is not None:
        from weavenet.api.cni_http import add_cni_routes

        add_cni_routes(app, run.cni, run.cni_kernel)
    if run.proxy is not None:
        from weavenet.proxy.service import add_proxy_routes

        add_proxy_routes(app, run.proxy)
    foreground = run.shell.foreground  # requests go before the mesh's backlog
    runners = [await start_http(with_loop_metrics(app, run), opts.http_addr, foreground)]
    log.info("Listening for HTTP control messages on %s", opts.http_addr)
    for addr in filter(None, (opts.status_addr, opts.metrics_addr)):
        status_app = with_loop_metrics(make_status_app(run.shell), run)
        runners.append(await start_http(status_app, addr, foreground))
        log.info("Listening for status+metrics requests on %s", addr)
    return runners


async def _shutdown(run: Running, runners: list[web.AppRunner]) -> None:
    run.shell.foreground.close()  # before the sockets it watches are closed
    if run.docker is not None:
        await run.docker.stop()
    for runner in runners:
        await runner.cleanup()
    if run.proxy is not None:
        await run.proxy.stop()
    if run.listeners is not None:
        await run.listeners.close()  # stops every DNS server
    elif run.dns is not None:
        await run.dns.stop()
    await run.shell.stop()
    if run.ipam is not None:
        run.ipam.close()
    for task in (run.keeper, run.cni_task):
        if task is not None:
            task.cancel()
    if run.sleeve is not None:
        run.sleeve.close()
    run.store.close()
    if run.monitor is not None:
        run.monitor.close()


async def serve(opts: Options) -> None:
    loop = asyncio.get_running_loop()
    store = Store(opts.state_dir)
    name = resolve_peer_name(opts.name, store, opts.state_dir)
    overlay = await _build_overlay(opts, name) if opts.weave_bridge else None
    router = build_router(opts, store, name, loop.time(), overlay)
    ipam_flags = (opts.ipalloc_range, opts.ipalloc_default_subnet, opts.ipalloc_init)
    ipam_settings = parse_ipam_flags(*ipam_flags, len(router.maker.direct_peers()))
    run = Running(MeshShell(router, opts.host, opts.port, store.save_targets), store)
    run.monitor = start_loop_monitor()
    run.ipam = await start_ipam(ipam_settings, run.shell, store)
    universe = str(ipam_settings.universe) if ipam_settings else None
    run.dns, run.listeners = await _start_dns(opts, router, run.shell, universe, run.ipam)
    if overlay is not None:
        run.sleeve = await _start_datapath(opts, router, run.shell, overlay)
        await _start_attachments(opts, run)
        await start_docker(opts, run)
        await start_proxy(opts, run)
    start_cni(opts, run)
    runners = await _start_http(opts, run)
    _tune_gc()
    await run.shell.start()  # last: see MeshShell.start
    notify_ready()  # the launching CLI, if any, waits for this
    run.monitor.mark_ready()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("=== received SIGINT/SIGTERM ===")
    await _shutdown(run, runners)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@with_flags
def weaver(**kw: object) -> None:
    """Run the weavenet router in the foreground."""
    if kw.pop("show_version"):
        click.echo(f"weave {__version__}")
        return
    setup_logging(str(kw.pop("log_level")))
    print_name = bool(kw.pop("print_peer_name"))
    kw["discovery"] = not kw.pop("no_discovery")
    kw["fastdp"] = not kw.pop("no_fastdp")
    kw["fast_sleeve"] = not kw.pop("no_fast_sleeve")
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
    import_parts(opts)
    with PidFile(opts.state_dir / "weaver.pid"):
        asyncio.run(serve(opts))


def _profiled(run: Callable[[], None]) -> None:
    """With WEAVENET_PROFILE=PATH, run under cProfile with a CPU clock (many routers share
    the cores, so wall time would mostly measure waiting for one) and write the pstats
    file at exit (SIGTERM included: serve() returns then)."""
    path = os.environ.get("WEAVENET_PROFILE")
    if not path:
        run()
        return
    import cProfile

    profile = cProfile.Profile(time.process_time)
    try:
        profile.runcall(run)
    finally:
        profile.dump_stats(path)


def main() -> None:
    gc.disable()  # until started: see _tune_gc
    try:
        _profiled(lambda: weaver.main(expand_bool_flags(sys.argv[1:]), standalone_mode=False))
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
