"""Attachment and expose endpoints: our extension of the router API (README, "HTTP API").

POST   /attach                   form ident, spec, netns, cidr (repeat), multicast=true|false,
                                 name (optional) -> 200 JSON {"ident", "cidrs", "mac"}
POST   /detach                   form ident, netns (optional), cidr (repeat; none = all)
                                 -> 200 JSON {"removed": [cidr...], "dropped": bool}
GET    /attachments              -> JSON {"attachments": [...], "exposed": [...]}
POST   /expose/{ip}/{prefixlen}  ?skipNAT=true -> 204 (as Weave's router/http.go)
DELETE /expose/{ip}/{prefixlen}  -> 204 (ours, for `weave hide`)

The router persists every change before answering; a change is carried through even if
the client goes away meanwhile (the handler awaits it shielded from cancellation). A
detach that leaves no address drops the attachment and releases the container's IPAM
addresses; a partial detach leaves IPAM alone (the CLI frees those addresses with
DELETE /ip/<ident>/<ip>, as Weave's script does).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from typing import Any, Protocol

from aiohttp import web

from weavenet.core.attachments import Attachment, AttachmentError, AttachRequest

Cidr = ipaddress.IPv4Interface


class AttachControl(Protocol):
    """What these endpoints need from the router (io.attachments.AttachmentKeeper)."""

    async def attach(self, req: AttachRequest) -> Attachment: ...

    async def detach(
        self, ident: str, netns_path: str | None, ips: Sequence[ipaddress.IPv4Address] | None
    ) -> tuple[list[Cidr], bool]: ...

    async def expose(self, cidr: Cidr, masquerade: bool) -> None: ...

    async def hide(self, cidr: Cidr) -> bool: ...

    def snapshot(self) -> dict[str, Any]: ...


ATTACH_KEY: web.AppKey[AttachControl] = web.AppKey("attachments", AttachControl)


class _BadRequest(Exception):
    pass


def _error(message: str, status: int) -> web.Response:
    return web.Response(text=message + "\n", status=status, content_type="text/plain")


def _cidr(text: str) -> Cidr:
    try:
        cidr = ipaddress.ip_interface(text)
    except ValueError:
        raise _BadRequest(f"invalid cidr {text!r}") from None
    if not isinstance(cidr, Cidr):
        raise _BadRequest(f"cidr {text!r} is not IPv4")
    return cidr


async def _form(request: web.Request) -> dict[str, list[str]]:
    post = await request.post()
    form: dict[str, list[str]] = {}
    for key, value in [*request.query.items(), *post.items()]:
        form.setdefault(key, []).append(str(value))
    return form


def _one(form: dict[str, list[str]], key: str, default: str | None = None) -> str:
    values = form.get(key)
    if not values or not values[-1]:
        if default is None:
            raise _BadRequest(f"missing form field {key!r}")
        return default
    return values[-1]


def _attach_request(form: dict[str, list[str]]) -> AttachRequest:
    multicast = _one(form, "multicast", "true")
    if multicast not in ("true", "false"):
        raise _BadRequest(f"multicast must be true or false, not {multicast!r}")
    ident = _one(form, "ident")
    return AttachRequest(
        ident=ident,
        spec=_one(form, "spec", ident),
        netns_path=_one(form, "netns"),
        cidrs=tuple(_cidr(c) for c in form.get("cidr", [])),
        multicast_route=multicast == "true",
        dns_name=_one(form, "name", "") or None,
    )


async def handle_attach(request: web.Request) -> web.Response:
    try:
        req = _attach_request(await _form(request))
        att = await asyncio.shield(request.app[ATTACH_KEY].attach(req))
    except _BadRequest as exc:
        return _error(str(exc), 400)
    except AttachmentError as exc:
        return _error(str(exc), 500 if exc.internal else 400)
    cidrs = [str(c) for c in att.cidrs]
    return web.json_response({"ident": att.ident, "cidrs": cidrs, "mac": att.mac})


async def handle_detach(request: web.Request) -> web.Response:
    try:
        form = await _form(request)
        ident = _one(form, "ident")
        ips = [_cidr(c).ip for c in form.get("cidr", [])] or None
        netns = _one(form, "netns", "") or None
        removed, dropped = await asyncio.shield(request.app[ATTACH_KEY].detach(ident, netns, ips))
    except _BadRequest as exc:
        return _error(str(exc), 400)
    except AttachmentError as exc:
        return _error(str(exc), 500 if exc.internal else 400)
    return web.json_response({"removed": [str(c) for c in removed], "dropped": dropped})


async def handle_attachments(request: web.Request) -> web.Response:
    return web.json_response(request.app[ATTACH_KEY].snapshot())


def _path_cidr(request: web.Request) -> Cidr:
    try:
        return _cidr(f"{request.match_info['ip']}/{request.match_info['prefixlen']}")
    except _BadRequest as exc:
        raise _BadRequest(f"unable to parse ip addr: {exc}") from None


async def handle_expose(request: web.Request) -> web.Response:
    try:
        cidr = _path_cidr(request)
        skip = _one(await _form(request), "skipNAT", "false").lower()
        if skip not in ("true", "false", "1", "0", "t", "f"):
            raise _BadRequest(f"unable to parse skipNAT option: {skip!r}")
        masquerade = skip not in ("true", "1", "t")
        await asyncio.shield(request.app[ATTACH_KEY].expose(cidr, masquerade))
    except _BadRequest as exc:
        return _error(str(exc), 400)
    except AttachmentError as exc:
        return _error(str(exc), 500 if exc.internal else 400)
    return web.Response(status=204)


async def handle_hide(request: web.Request) -> web.Response:
    try:
        await asyncio.shield(request.app[ATTACH_KEY].hide(_path_cidr(request)))
    except _BadRequest as exc:
        return _error(str(exc), 400)
    except AttachmentError as exc:
        return _error(str(exc), 500 if exc.internal else 400)
    return web.Response(status=204)


def add_attach_routes(app: web.Application, control: AttachControl) -> None:
    app[ATTACH_KEY] = control
    app.router.add_post("/attach", handle_attach)
    app.router.add_post("/detach", handle_detach)
    app.router.add_get("/attachments", handle_attachments)
    app.router.add_post("/expose/{ip}/{prefixlen}", handle_expose)
    app.router.add_delete("/expose/{ip}/{prefixlen}", handle_hide)
