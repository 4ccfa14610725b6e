"""The proxy as the router runs it: the -H listeners, the client of the real daemon, the
start-up scan, and ``GET /proxyaddrs`` (what ``weave env`` and ``weave config`` print).

Listening on a unix socket never takes it from a live owner: if something answers on
the path (another router on a host sharing this filesystem), that address is skipped
with an error line; a stale socket file is replaced. On stop, the socket file is removed
only if it is still ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from weavenet.core.errors import ConfigError
from weavenet.io.docker_api import DEFAULT_DOCKER_HOST, DockerApi, DockerUnavailable
from weavenet.proxy import intercept
from weavenet.proxy.relay import Dial, Relay, Streams
from weavenet.proxy.rules import Json, ProxySettings, RuleError
from weavenet.proxy.wiring import Addresses, Attacher, Wiring, WiringError, attached

if TYPE_CHECKING:
    from weavenet.options import Options

log = logging.getLogger("weavenet.proxy")

WEAVE_SOCK = "/var/run/weave/weave.sock"
PROXY_TCP_PORT = 12375


def default_listen_address(docker_host: str) -> str:
    """Weave's proxy_args: a unix socket beside a unix daemon, else TCP port 12375."""
    if not docker_host or docker_host.startswith("unix://"):
        return "unix://" + WEAVE_SOCK
    return f"tcp://0.0.0.0:{PROXY_TCP_PORT}"


def normalise(addr: str) -> str:
    """``unix:///path``, ``/path``, ``tcp://host:port``, ``host:port``, ``:port`` ->
    ``unix:///path`` or ``tcp://host:port``."""
    addr = addr.removeprefix("=")  # -H=ADDR
    if addr.startswith("unix://") or addr.startswith("/"):
        path = addr.removeprefix("unix://")
        if not path.startswith("/"):
            raise ValueError(f"-H {addr}: unix sockets must be given as an absolute path")
        return "unix://" + path
    url = urlsplit(addr if "://" in addr else "tcp://" + addr)
    if url.scheme != "tcp" or url.port is None:
        raise ValueError(f"-H {addr}: use [tcp://][host]:port or [unix://]/path/to/socket")
    return f"tcp://{url.hostname or '0.0.0.0'}:{url.port}"


def dialer(docker_host: str) -> Dial:
    host = docker_host or DEFAULT_DOCKER_HOST
    if host.startswith("unix://"):
        path = host.removeprefix("unix://")

        async def dial_unix() -> Streams:
            return await asyncio.open_unix_connection(path)

        return dial_unix
    url = urlsplit(host if "://" in host else "tcp://" + host)

    async def dial_tcp() -> Streams:
        return await asyncio.open_connection(url.hostname, url.port or 2375)

    return dial_tcp


class ProxyDocker:
    """intercept.Docker over io.docker_api (whose client is imported on first use)."""

    def __init__(self, docker_host: str) -> None:
        self.api = DockerApi(docker_host)

    async def inspect_container(self, ident: str) -> Json | None:
        try:
            return await self.api.inspect(ident)
        except DockerUnavailable as exc:
            log.warning("proxy: inspecting container %s: %s", ident, exc)
            return None

    async def inspect_image(self, name: str) -> Json | None:
        try:
            return await self.api.inspect_image(name)
        except DockerUnavailable as exc:
            raise RuleError(f"inspecting image {name}: {exc}", 500) from None

    async def kill(self, ident: str) -> None:
        with contextlib.suppress(DockerUnavailable):
            await self.api.kill(ident)

    async def running(self) -> list[str]:
        return await self.api.running_ids()

    async def close(self) -> None:
        await self.api.close()


def _in_use(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


class Listener(msgspec.Struct):
    address: str
    server: asyncio.Server
    inode: int | None = None  # a unix socket's, to remove only our own


class ProxyService:
    def __init__(self, listen: list[str], docker_host: str, wiring: Wiring) -> None:
        self.listen = [normalise(a) for a in listen] or [default_listen_address(docker_host)]
        self.docker_host = docker_host or DEFAULT_DOCKER_HOST
        self.docker = ProxyDocker(self.docker_host)
        self.wiring = wiring
        self.relay = Relay(dialer(self.docker_host), intercept.router(self.docker, wiring))
        self.listeners: list[Listener] = []
        self._scan: asyncio.Task[None] | None = None

    @property
    def addresses(self) -> list[str]:
        return [listener.address for listener in self.listeners]

    async def start(self) -> None:
        for addr in self.listen:
            try:
                self.listeners.append(await self._listen(addr))
            except OSError as exc:
                log.error("proxy: cannot listen on %s: %s", addr, exc.strerror or exc)
        for addr in self.addresses:
            log.info("proxy listening on %s", addr)
        self._scan = asyncio.create_task(self.attach_existing())

    async def _listen(self, addr: str) -> Listener:
        if addr.startswith("tcp://"):
            url = urlsplit(addr)
            server = await asyncio.start_server(self.relay.serve, url.hostname, url.port)
            return Listener(addr, server)
        path = addr.removeprefix("unix://")
        if os.path.exists(path):
            if _in_use(path):
                raise OSError(f"{path} is in use by another process (give -H)")
            os.unlink(path)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        server = await asyncio.start_unix_server(self.relay.serve, path)
        self._copy_permissions(path)
        return Listener(addr, server, os.stat(path).st_ino)

    def _copy_permissions(self, path: str) -> None:
        """Same owner and mode as the daemon's socket, as Weave does."""
        if not self.docker_host.startswith("unix://"):
            return
        with contextlib.suppress(OSError):
            st = os.stat(self.docker_host.removeprefix("unix://"))
            os.chmod(path, st.st_mode & 0o7777)
            os.chown(path, st.st_uid, st.st_gid)

    async def attach_existing(self) -> None:
        """Weave's AttachExistingContainers: running containers of ours the router does
        not have (started while it was down: their wait program is waiting)."""
        try:
            idents = await self.docker.running()
        except DockerUnavailable as exc:
            log.info("proxy: cannot list containers at %s: %s", self.docker_host, exc)
            return
        for ident in idents:
            if attached(self.wiring.attacher, ident) is not None:
                continue
            info = await self.docker.inspect_container(ident)
            try:
                if info is not None:
                    await self.wiring.attach(info)
            except WiringError as exc:
                log.error("proxy: cannot attach existing container %s: %s", ident[:12], exc)

    async def stop(self) -> None:
        if self._scan is not None:
            self._scan.cancel()
        for listener in self.listeners:
            listener.server.close()
            if listener.inode is not None:
                path = listener.address.removeprefix("unix://")
                with contextlib.suppress(OSError):
                    if os.stat(path).st_ino == listener.inode:
                        os.unlink(path)
        self.relay.close()
        await self.docker.close()


async def handle_proxyaddrs(request: web.Request) -> web.Response:
    """``GET /proxyaddrs``: the proxy's addresses, one per line (Weave's StatusHTTP)."""
    service = request.app[PROXY_KEY]
    return web.Response(text="".join(a + "\n" for a in service.addresses))


PROXY_KEY: web.AppKey[ProxyService] = web.AppKey("proxy", ProxyService)


def add_proxy_routes(app: web.Application, service: ProxyService) -> None:
    app[PROXY_KEY] = service
    app.router.add_get("/proxyaddrs", handle_proxyaddrs)


async def start_proxy(
    opts: Options, state_dir: Path, ipam: Addresses | None, attacher: Attacher, dns: Any
) -> ProxyService | None:
    """The proxy as ``weaver --proxy`` runs it (None, with an error line, if it cannot:
    the router runs on without it). `dns` is the DnsListeners (None: no WeaveDNS)."""
    from weavenet.proxy import weavewait

    try:
        volume = weavewait.install(state_dir / weavewait.WAIT_DIR)
    except (ConfigError, OSError) as exc:
        log.error("proxy: not started: %s", exc)
        return None
    settings = ProxySettings(
        wait_volume=str(volume),
        dns_domain=opts.dns_domain,
        hostname_from_label=opts.hostname_from_label,
        hostname_match=opts.hostname_match,
        hostname_replacement=opts.hostname_replacement,
        no_default_ipalloc=opts.no_default_ipalloc,
        without_dns=opts.without_dns or dns is None,
        no_rewrite_hosts=opts.no_rewrite_hosts,
        rewrite_inspect=opts.rewrite_inspect,
        no_multicast_route=opts.no_multicast_route,
    )
    try:
        service = ProxyService(
            list(opts.proxy_hosts), opts.docker_api or "", Wiring(settings, ipam, attacher, dns)
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    await service.start()
    return service
