"""The CNI registry endpoints (ours): which containers came through the CNI plugin.

PUT    /cni/{id}   ?netns=PATH&ifname=NAME -> 204 (recorded in the store before answering)
DELETE /cni/{id}   -> 204 (also when unknown)
GET    /cni        -> JSON {"containers": [{ident, netns, ifname, added}], "sources": [...],
                            "freed": N}

POST   /cni-kernel/{operation}   form json={...} -> 200 JSON; 400 bad request; 500
                                 {"error": "..."} when the kernel refused (attach, detach,
                                 inspect, bridge: the plugin's netlink work, io.cni_kernel)

The router's missed-DEL collector (``io.cni_gc``) frees the addresses of registered
containers that no runtime lists any more. The registry is absent (404) when IPAM is
disabled, the kernel operations when the router has no bridge.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web

from weavenet.core.errors import WeaveError

MAX_IDENT = 400


class CniControl(Protocol):
    def register(self, ident: str, netns: str, ifname: str) -> object: ...
    def unregister(self, ident: str) -> bool: ...
    def snapshot(self) -> dict[str, object]: ...


class CniKernelControl(Protocol):
    async def run(self, operation: str, req: dict[str, Any]) -> dict[str, Any]: ...


CNI_KEY: web.AppKey[CniControl] = web.AppKey("cni")
KERNEL_KEY: web.AppKey[CniKernelControl] = web.AppKey("cni-kernel")


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


async def handle_kernel(request: web.Request) -> web.Response:
    from weavenet.io.cni_kernel import CniRequestError

    try:
        req = json.loads(str((await request.post()).get("json", "")))
        if not isinstance(req, dict):
            raise CniRequestError("json must be an object")
        answer = await request.app[KERNEL_KEY].run(request.match_info["operation"], req)
    except (ValueError, CniRequestError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except (WeaveError, OSError) as exc:
        return web.json_response({"error": str(exc)}, status=500)
    return web.json_response(answer)


def add_cni_routes(
    app: web.Application, control: CniControl | None, kernel: CniKernelControl | None
) -> None:
    if control is not None:
        app[CNI_KEY] = control
        app.router.add_put("/cni/{id}", handle_register)
        app.router.add_delete("/cni/{id}", handle_unregister)
        app.router.add_get("/cni", handle_list)
    if kernel is not None:
        app[KERNEL_KEY] = kernel
        app.router.add_post("/cni-kernel/{operation}", handle_kernel)
