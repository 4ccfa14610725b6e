"""WeaveDNS over HTTP (weave-surface.md §2.4), as Go's nameserver/http.go:

- ``GET /domain``: the domain, no newline;
- ``GET /dns-address-port`` / ``GET /dns-address``: the listen address with / without port;
- ``PUT /name/{container}/{ip}`` (form ``fqdn``, ``check-alive``): register, 204;
- ``DELETE /name/{container}/{ip}``, ``/name/{container}``, ``/name`` (form ``fqdn``
  optional): tombstone our matching entries, 204;
- ``GET /name`` with ``Accept: application/json``: every entry as Go's JSON (404 otherwise,
  as Go's route does not match).

Deviation (ours): there is one listen address per attached subnet, so the address
endpoints take an optional ``?ip=CONTAINER_IP`` and answer with the listener in that
container's subnet; without it they answer with the first listener. Before any listener
exists they answer 404 with a sentence saying so (Go always has its one address).
A bad IP gets 400 with Go's text ``invalid IP Address: TEXT``.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Protocol

from aiohttp import web

from weavenet.api.gofmt import go_json
from weavenet.core.dns.entries import Entry
from weavenet.core.dns.status import entries_json

log = logging.getLogger("weavenet.dns")

NO_LISTENER = "the DNS server has no listen address yet: attach a container first"


class DnsControl(Protocol):
    """What the HTTP routes need (weavenet.io.dns_shell.DnsShell implements it)."""

    @property
    def domain(self) -> str: ...
    def dns_address(self, client_ip: str | None = None) -> str | None: ...  # "host:port"
    def add_entry(self, hostname: str, container: str, addr: int) -> Entry | None: ...
    def delete_entries(
        self, container: str | None = None, addr: int | None = None, hostname: str | None = None
    ) -> list[Entry]: ...
    def container_gone(self, container: str) -> bool: ...  # known to be stopped
    def entries(self) -> list[Entry]: ...


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/plain", charset="utf-8")


def _http_error(message: str, status: int) -> web.Response:
    """Go's http.Error: message and newline, nosniff."""
    response = _text(message + "\n", status)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def parse_ip(text: str) -> int:
    """Go address.ParseIP for IPv4 (and IPv4-mapped IPv6); ValueError with Go's text."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        addr = None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if not isinstance(addr, ipaddress.IPv4Address):
        raise ValueError(f"invalid IP Address: {text}")
    return int(addr)


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


async def _form(request: web.Request, key: str) -> str:
    """Go r.FormValue: the url-encoded body first, then the query."""
    if request.can_read_body:
        post = await request.post()
        if key in post:
            return str(post[key])
    return request.query.get(key, "")


DNS_KEY: web.AppKey[DnsControl] = web.AppKey("dns", DnsControl)


def _dns(request: web.Request) -> DnsControl:
    return request.app[DNS_KEY]


def _address(request: web.Request) -> str | None:
    return _dns(request).dns_address(request.query.get("ip") or None)


async def get_domain(request: web.Request) -> web.Response:
    return _text(_dns(request).domain)


async def get_address_port(request: web.Request) -> web.Response:
    found = _address(request)
    return _text(found) if found is not None else _http_error(NO_LISTENER, 404)


async def get_address(request: web.Request) -> web.Response:
    found = _address(request)
    if found is None:
        return _http_error(NO_LISTENER, 404)
    host = found.rpartition(":")[0]
    return _text(host[1:-1] if host.startswith("[") else host)


def _bad_ip(exc: ValueError) -> web.Response:
    log.info("%s", exc)
    return _http_error(str(exc), 400)


async def put_name(request: web.Request) -> web.Response:
    control, container = _dns(request), request.match_info["container"]
    try:
        addr = parse_ip(request.match_info["ip"])
    except ValueError as exc:
        return _bad_ip(exc)
    fqdn = await _form(request, "fqdn")
    control.add_entry(fqdn, container, addr)
    if await _form(request, "check-alive") == "true" and control.container_gone(container):
        log.info("container '%s' is not running: removing", container)
        control.delete_entries(container, addr, _fqdn(fqdn))
    return web.Response(status=204)


async def delete_name(request: web.Request) -> web.Response:
    """Every part not in the path or form is a wildcard, as Go's "*"."""
    ip_text, addr = request.match_info.get("ip"), None
    if ip_text is not None:
        try:
            addr = parse_ip(ip_text)
        except ValueError as exc:
            return _bad_ip(exc)
    fqdn = await _form(request, "fqdn")
    container = request.match_info.get("container")
    _dns(request).delete_entries(container, addr, _fqdn(fqdn) if fqdn else None)
    return web.Response(status=204)


async def get_names(request: web.Request) -> web.Response:
    if request.headers.get("Accept") != "application/json":
        return _http_error("404 page not found", 404)  # Go's route needs that header
    entries = entries_json(_dns(request).entries())
    return _text(go_json(entries or None) + "\n")


def add_dns_routes(app: web.Application, control: DnsControl) -> None:
    """Mount the routes on ``app`` (before it is started). Not called when DNS is off, so
    that every DNS endpoint answers 404 then, as Go's."""
    app[DNS_KEY] = control
    app.router.add_get("/domain", get_domain)
    app.router.add_get("/dns-address-port", get_address_port)
    app.router.add_get("/dns-address", get_address)
    app.router.add_put("/name/{container}/{ip}", put_name)
    app.router.add_delete("/name/{container}/{ip}", delete_name)
    app.router.add_delete("/name/{container}", delete_name)
    app.router.add_delete("/name", delete_name)
    app.router.add_get("/name", get_names)
