"""The CNI registry endpoints (ours): which containers came through the CNI plugin.

PUT    /cni/{id}   ?netns=PATH&ifname=NAME -> 204 (recorded in the store before answering)
DELETE /cni/{id}   -> 204 (also when unknown)
GET    /cni        -> JSON {"containers": [{ident, netns, ifname, added}], "sources": [...],
                            "freed": N}

The router's missed-DEL collector (``io.cni_gc``) frees the addresses of registered
containers that no runtime lists any more. All 404 when IPAM is disabled.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

MAX_IDENT = 400


class CniControl(Protocol):
    def register(self, ident: str, netns: str, ifname: str) -> object: ...
    def unregister(self, ident: str) -> bool: ...
    def snapshot(self) -> dict[str, object]: ...


CNI_KEY: web.AppKey[CniControl] = web.AppKey("cni")


def _ident(request: web.Request) -> str:
    ident = request.match_info["id"]
    if len(ident.encode()) > MAX_IDENT:
        raise web.HTTPBadRequest(text=f"ident too long: at most {MAX_IDENT} bytes\n")
    return ident


async def handle_register(request: web.Request) -> web.Response:
    netns = request.query.get("netns", "")
    request.app[CNI_KEY].register(_ident(request), netns, request.query.get("ifname", ""))
    return web.Response(status=204)


async def handle_unregister(request: web.Request) -> web.Response:
    request.app[CNI_KEY].unregister(_ident(request))
    return web.Response(status=204)


async def handle_list(request: web.Request) -> web.Response:
    return web.json_response(request.app[CNI_KEY].snapshot())


def add_cni_routes(app: web.Application, control: CniControl) -> None:
    app[CNI_KEY] = control
    app.router.add_put("/cni/{id}", handle_register)
    app.router.add_delete("/cni/{id}", handle_unregister)
    app.router.add_get("/cni", handle_list)
