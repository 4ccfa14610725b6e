"""The IPAM HTTP API, as Weave Net 2.8 ``ipam/http.go`` (plus ``DELETE /peer`` and
``DELETE /peer/{id}`` from ``prog/weaver/discovery.go``).

Bodies, status codes and error texts are Go's: a bad request is a 400 whose body is the
error text and a newline (``http.Error``); a cancelled request answers 200 ``cancelled``.
Every ``/ip...``, ``/ipinfo/...`` and ``/ring`` route is a 404 when IPAM is disabled.

Long-running requests (allocate, claim, ``/ring``) are awaited; when the client goes away
aiohttp cancels the handler (the runner is made with ``handler_cancellation=True``) and
the IPAM shell cancels the request in the allocator.

Deviations from Go: ``check-alive`` is accepted and ignored (there is no Docker client
here to ask); ``GET /ring`` is cancelled too when its client goes away (Go's Prime waits
on); ``/ipinfo/tracker`` is always empty (no AWS VPC or no-masq-local tracker); an ident
longer than 400 bytes is refused with a 400 (it must fit in an LMDB key).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from weavenet.api.control import IpamCancelled, IpamControl, IpamRequestFailed
from weavenet.core.ipam.address import CIDR, parse_address, parse_subnet
from weavenet.core.ipam.allocator import IpamError

log = logging.getLogger("weavenet.ipam")

IPAM_KEY: web.AppKey[IpamControl | None] = web.AppKey("ipam")
MAX_IDENT = 400  # LMDB keys are at most 511 bytes; container ids are 64


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/plain", charset="utf-8")


def _http_error(message: str, status: int) -> web.Response:
    response = _text(message + "\n", status)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def bad_request(message: str) -> web.Response:
    """Go ``badRequest``: 400 with the error text, logged as a warning."""
    log.warning("[allocator]: %s", message)
    return _http_error(message, 400)


def _not_found() -> web.Response:
    return _http_error("404 page not found", 404)


class _Reject(Exception):
    """Ends a handler with this response (bad parameters)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.text)
        self.response = response


def _ipam(request: web.Request) -> IpamControl:
    ipam = request.app.get(IPAM_KEY)
    if ipam is None:
        raise _Reject(_not_found())
    return ipam


def _ident(request: web.Request) -> str:
    ident = request.match_info["id"]
    if len(ident.encode()) > MAX_IDENT:
        raise _Reject(bad_request(f"ident too long: at most {MAX_IDENT} bytes"))
    return ident


def _cidr(request: web.Request, subnet: bool) -> CIDR:
    """``{ip}/{prefixlen}`` from the path: a subnet (allocate, lookup) or an address (claim)."""
    text = f"{request.match_info['ip']}/{request.match_info['prefixlen']}"
    try:
        return parse_subnet(text) if subnet else CIDR.parse(text)
    except ValueError as exc:
        raise _Reject(bad_request(str(exc))) from None


async def _form(request: web.Request, key: str) -> str:
    """Go ``r.FormValue``: the query first, then a url-encoded body."""
    if key in request.query:
        return request.query[key]
    if request.can_read_body and request.content_type == "application/x-www-form-urlencoded":
        return str((await request.post()).get(key, ""))
    return ""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _handler(func: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await func(request)
        except _Reject as reject:
            return reject.response
        except IpamError as exc:
            return bad_request(str(exc))

    return wrapped


async def _allocate(request: web.Request, subnet: CIDR) -> web.Response:
    ipam, ident = _ipam(request), _ident(request)
    # check-alive is accepted and ignored: it only applies to Docker containers
    try:
        cidr = await ipam.allocate(ident, subnet)
    except IpamCancelled:
        log.info("[allocator]: allocate for %s cancelled", ident)
        return _text("cancelled")
    except IpamRequestFailed as exc:
        return bad_request(str(exc))
    return _text(f"{CIDR(cidr.addr, subnet.prefix_len)}")


async def allocate_default(request: web.Request) -> web.Response:
    return await _allocate(request, _ipam(request).default_subnet)


async def allocate_in_subnet(request: web.Request) -> web.Response:
    _ipam(request)
    return await _allocate(request, _cidr(request, subnet=True))


async def claim(request: web.Request) -> web.Response:
    ipam, ident = _ipam(request), _ident(request)
    cidr = _cidr(request, subnet=False)
    no_error_on_unknown = await _form(request, "noErrorOnUnknown") == "true"
    try:
        await ipam.claim(ident, cidr, no_error_on_unknown)
    except IpamCancelled:
        log.info("[allocator]: claim for %s cancelled", ident)
        return _text("cancelled")
    except IpamRequestFailed as exc:
        return bad_request(str(exc))
    return web.Response(status=204)


def _addresses(cidrs: list[CIDR]) -> web.Response:
    return _text(" ".join(str(c) for c in cidrs))


async def lookup_default(request: web.Request) -> web.Response:
    return _addresses(_ipam(request).lookup(_ident(request), None))


async def lookup_in_subnet(request: web.Request) -> web.Response:
    ipam = _ipam(request)
    return _addresses(ipam.lookup(_ident(request), _cidr(request, subnet=True)))


async def list_owned(request: web.Request) -> web.Response:
    owned = [
        {"containerid": ident, "addrs": [str(c) for c in cidrs]}
        for ident, cidrs in _ipam(request).owned().items()
    ]
    body = json.dumps({"owned": owned or None}, separators=(",", ":")) + "\n"
    return web.Response(body=body.encode(), headers={"Content-Type": "application/json"})


async def free(request: web.Request) -> web.Response:
    ipam, ident = _ipam(request), _ident(request)
    try:
        addr = parse_address(request.match_info["ip"])
    except ValueError as exc:
        return bad_request(str(exc))
    try:
        await ipam.free(ident, addr)
    except IpamError as exc:
        return bad_request(f"Unable to free: {exc}")
    return web.Response(status=204)


async def delete(request: web.Request) -> web.Response:
    await _ipam(request).delete(_ident(request))
    return web.Response(status=204)


async def default_subnet(request: web.Request) -> web.Response:
    return _text(str(_ipam(request).default_subnet))


async def tracker(request: web.Request) -> web.Response:
    _ipam(request)
    return _text("\n")  # no AWS VPC / no-masq-local tracker


async def ring(request: web.Request) -> web.Response:
    ipam = _ipam(request)
    try:
        await ipam.prime()
    except IpamCancelled:
        return _text("cancelled")
    return _text("")


async def remove_self(request: web.Request) -> web.Response:
    """``weave reset``: our ranges go to an heir (without IPAM: nothing to do)."""
    ipam = request.app.get(IPAM_KEY)
    if ipam is not None:
        await ipam.shutdown()
    return web.Response(status=204)


async def take_over(request: web.Request) -> web.Response:
    """``weave rmpeer``: Go prints nothing when IPAM is disabled."""
    ipam = request.app.get(IPAM_KEY)
    if ipam is None:
        return _text("")
    peer = request.match_info["id"]
    taken = await ipam.admin_takeover(peer)
    return _text(f"{taken} IPs taken over from {peer}\n")


async def _cancel_waiting(app: web.Application) -> None:
    """On shutdown, before aiohttp waits (up to a minute) for the handlers still running:
    the blocked allocations answer "cancelled" now."""
    ipam = app.get(IPAM_KEY)
    if ipam is not None:
        ipam.cancel_all()


def add_ipam_routes(app: web.Application, ipam: IpamControl | None) -> None:
    """Mount the IPAM API on ``app``; with ``ipam`` None its routes answer 404."""
    app[IPAM_KEY] = ipam
    app.on_shutdown.append(_cancel_waiting)
    routes = [
        ("GET", "/ipinfo/defaultsubnet", default_subnet),
        ("GET", "/ipinfo/tracker", tracker),
        ("PUT", "/ip/{id}/{ip}/{prefixlen}", claim),
        ("GET", "/ring", ring),
        ("GET", "/ip/{id}/{ip}/{prefixlen}", lookup_in_subnet),
        ("GET", "/ip/{id}", lookup_default),
        ("GET", "/ip", list_owned),
        ("POST", "/ip/{id}/{ip}/{prefixlen}", allocate_in_subnet),
        ("POST", "/ip/{id}", allocate_default),
        ("DELETE", "/ip/{id}/{ip}", free),
        ("DELETE", "/ip/{id}", delete),
        ("DELETE", "/peer", remove_self),
        ("DELETE", "/peer/{id}", take_over),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _handler(handler))
