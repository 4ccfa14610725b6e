"""The router's HTTP API (``--http-addr``) and read-only status API (``--status-addr``).

Endpoints and responses follow Weave Net 2.8 ``prog/weaver/http.go`` and
``router/http.go``; see the module docstrings of the renderers for formats.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from weavenet.api.attach_http import AttachControl, add_attach_routes
from weavenet.api.control import IpamControl, RouterControl
from weavenet.api.gofmt import go_json
from weavenet.api.ipam_http import add_ipam_routes
from weavenet.api.metrics_registry import MetricsRegistry
from weavenet.api.status_text import (
    render_connections,
    render_dns,
    render_ipam,
    render_peers,
    render_status_report,
    render_targets,
)
from weavenet.api.template import TemplateError, parse

CONTROL_KEY: web.AppKey[RouterControl] = web.AppKey("control", RouterControl)
# built on the first GET /metrics (prometheus_client is imported then, not at start-up)
REGISTRY_KEY: web.AppKey[MetricsRegistry] = web.AppKey("registry", MetricsRegistry)

LISTEN_BACKLOG = 128  # aiohttp's sites' default

Renderer = Callable[[dict[str, Any]], str]
# sub-view -> (renderer, report section that must be present or None)
STATUS_VIEWS: dict[str, tuple[Renderer, str | None]] = {
    "targets": (render_targets, None),
    "connections": (render_connections, None),
    "peers": (render_peers, None),
    "dns": (render_dns, "DNS"),
    "ipam": (render_ipam, "IPAM"),
}


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/plain", charset="utf-8")


def _http_error(message: str, status: int) -> web.Response:
    """Like Go's ``http.Error``: message plus newline, nosniff header."""
    response = _text(message + "\n", status)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _not_found() -> web.Response:
    return _http_error("404 page not found", 404)


def _control(request: web.Request) -> RouterControl:
    return request.app[CONTROL_KEY]


async def handle_status(request: web.Request) -> web.Response:
    status = _control(request).status_report()
    return _text(render_status_report(status), 200 if status.get("Ready") else 503)


async def handle_status_view(request: web.Request) -> web.Response:
    view = STATUS_VIEWS.get(request.match_info["view"])
    if view is None:
        return _not_found()
    render, section = view
    report = _control(request).report(routes=False)
    if section is not None and not report.get(section):
        return _not_found()
    return _text(render(report), 200 if report.get("Ready") else 503)


async def handle_report(request: web.Request) -> web.Response:
    if "application/json" in request.headers.get("Accept", ""):
        body = go_json(_control(request).report(), indent=4)
        return web.Response(body=body.encode(), headers={"Content-Type": "application/json"})
    formats = request.query.getall("format", [])
    if len(formats) != 1:
        return _http_error("error: must supply one format parameter", 400)
    try:
        template = parse(formats[0])
    except TemplateError as exc:
        return _http_error(str(exc), 400)
    try:
        return _text(template.execute(_control(request).report()))
    except TemplateError:
        return _http_error("error during template execution", 500)


async def handle_metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[REGISTRY_KEY].render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _form_values(request: web.Request) -> tuple[list[str], str]:
    """Go ``r.Form``: query parameters plus the url-encoded body."""
    post = await request.post()
    peers = list(request.query.getall("peer", []))
    peers += [str(p) for p in post.getall("peer", [])]
    replace = str(post.get("replace", request.query.get("replace", "")))
    return peers, replace


async def handle_connect(request: web.Request) -> web.Response:
    peers, replace = await _form_values(request)
    errors = _control(request).connect(peers, replace == "true")
    if errors:
        return _http_error("\n".join(errors), 400)
    return web.Response(status=200)


async def handle_forget(request: web.Request) -> web.Response:
    peers, _ = await _form_values(request)
    _control(request).forget(peers)
    return web.Response(status=200)


def _base_app(control: RouterControl) -> web.Application:
    app = web.Application()
    app[CONTROL_KEY] = control
    app[REGISTRY_KEY] = MetricsRegistry(control)
    app.router.add_get("/status", handle_status)
    app.router.add_get("/status/{view}", handle_status_view)
    app.router.add_get("/report", handle_report)
    app.router.add_get("/metrics", handle_metrics)
    return app


def make_app(
    control: RouterControl,
    ipam: IpamControl | None = None,
    attachments: AttachControl | None = None,
) -> web.Application:
    """The full control API served on ``--http-addr`` (IPAM routes 404 without ``ipam``;
    the attachment endpoints when the router has a bridge)."""
    app = _base_app(control)
    app.router.add_post("/connect", handle_connect)
    app.router.add_post("/forget", handle_forget)
    add_ipam_routes(app, ipam)
    if attachments is not None:
        add_attach_routes(app, attachments)
    return app


def make_status_app(control: RouterControl) -> web.Application:
    """Read-only status, report and metrics, for ``--status-addr``."""
    return _base_app(control)


def split_host_port(addr: str) -> tuple[str | None, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (all interfaces)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"invalid listen address {addr!r}: expected host:port or /path/to/socket")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return (host or None), int(port)


class Foreground(Protocol):
    """What the API tells the router's background work (io/foreground.py)."""

    def watch(self, sock: socket.socket) -> None: ...
    def begin(self) -> None: ...
    def end(self) -> None: ...


def _remove_stale_socket(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)  # left behind by a previous run
    except FileNotFoundError:
        pass


def listening_socket(addr: str) -> socket.socket:
    """A socket listening on ``host:port`` (``:port``: every interface, IPv4 and IPv6
    where the kernel has both) or, when ``addr`` starts with "/", a unix socket."""
    if addr.startswith("/"):
        _remove_stale_socket(addr)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(addr)
            sock.listen(LISTEN_BACKLOG)
        except BaseException:
            sock.close()
            raise
        return sock
    host, port = split_host_port(addr)
    if host is None:
        dual = socket.has_dualstack_ipv6()
        family = socket.AF_INET6 if dual else socket.AF_INET
        return socket.create_server(
            ("", port), family=family, backlog=LISTEN_BACKLOG, dualstack_ipv6=dual
        )
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return socket.create_server(sockaddr[:2], family=family, backlog=LISTEN_BACKLOG)


def _foreground_middleware(foreground: Foreground) -> Any:
    @web.middleware
    async def foreground_handler(request: web.Request, handler: Any) -> web.StreamResponse:
        foreground.begin()
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            foreground.end()

    return foreground_handler


async def start_http(
    app: web.Application, addr: str, foreground: Foreground | None = None
) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` or, when ``addr`` starts with "/", a unix socket.
    With ``foreground``, the router's background work stands aside while a request is
    arriving or handled (io/foreground.py).

    The caller owns the returned runner and must ``await runner.cleanup()`` (after
    ``foreground``'s sockets are unwatched). ``runner.addresses`` gives the bound
    address (useful with port 0).
    """
    if foreground is not None:
        app.middlewares.append(_foreground_middleware(foreground))
    sock = listening_socket(addr)
    # handler_cancellation: a client that goes away cancels its handler, and with it
    # a blocked IPAM request (aiohttp >= 3.9 no longer does this by default)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    try:
        await runner.setup()
        await web.SockSite(runner, sock, backlog=LISTEN_BACKLOG).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    if foreground is not None:
        foreground.watch(sock)
    return runner
