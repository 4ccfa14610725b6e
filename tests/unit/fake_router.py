"""A fake router for CLI tests: Weave's IPAM API (surface 2.3) with a ring that is ready or
not, the report's IPAM Status/Awaiting, and our attachment routes over an in-memory table."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from weavenet.api.attach_http import add_attach_routes
from weavenet.api.http import make_app
from weavenet.api.testing import FakeRouterControl
from weavenet.core.attachments import Attachment, AttachmentTable, AttachRequest

Cidr = ipaddress.IPv4Interface


class FakeAttachments:
    """AttachControl over an AttachmentTable; records what it was asked."""

    def __init__(self) -> None:
        self.table = AttachmentTable()
        self.exposed: list[tuple[Cidr, bool]] = []
        self.requests: list[AttachRequest] = []

    async def attach(self, req: AttachRequest) -> Attachment:
        self.requests.append(req)
        att = Attachment(req.ident, req.spec, req.netns_path, "1:1", req.cidrs,
                         req.multicast_route, "02:00:00:00:00:aa", req.dns_name)  # fmt: skip
        return self.table.add(att)

    async def detach(
        self, ident: str, netns_path: str | None, ips: Sequence[ipaddress.IPv4Address] | None
    ) -> tuple[list[Cidr], bool]:
        removed, left = self.table.remove_cidrs(ident, ips)
        return list(removed), bool(removed) and left is None

    async def expose(self, cidr: Cidr, masquerade: bool) -> None:
        self.exposed = [e for e in self.exposed if e[0] != cidr] + [(cidr, masquerade)]

    async def hide(self, cidr: Cidr) -> bool:
        known = any(e[0] == cidr for e in self.exposed)
        self.exposed = [e for e in self.exposed if e[0] != cidr]
        return known

    def snapshot(self) -> dict[str, Any]:
        return {
            "attachments": [a.to_record() for a in self.table.all()],
            "exposed": [{"cidr": str(c), "masquerade": m} for c, m in self.exposed],
        }


@dataclass
class FakeIpam:
    enabled: bool = True
    ready: bool = True
    ready_after_reports: int | None = None  # the ring becomes ready after N report calls
    status: str = "ready"
    awaiting: str = ""
    next_host: int = 1
    owned: dict[str, list[str]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    reports: int = 0

    def report(self) -> dict[str, Any]:
        self.reports += 1
        if self.ready_after_reports is not None and self.reports >= self.ready_after_reports:
            self.ready, self.status, self.awaiting = True, "ready", ""
        return {"Status": self.status, "Awaiting": self.awaiting}


class IpamReportControl(FakeRouterControl):
    """The sample report, with the IPAM Status/Awaiting fields of contract C."""

    def __init__(self, ipam: FakeIpam) -> None:
        super().__init__()
        self.ipam = ipam

    def report(self, *, routes: bool = True) -> dict[str, Any]:
        data = super().report(routes=routes)
        data["IPAM"] = {**data["IPAM"], **self.ipam.report()}
        return data


def build_app(ipam: FakeIpam, attachments: FakeAttachments) -> web.Application:
    app = make_app(IpamReportControl(ipam))
    add_attach_routes(app, attachments)

    async def until_ready(request: web.Request) -> bool:
        """Block like the allocator; False if the client went away meanwhile."""
        while not ipam.ready:
            transport = request.transport
            if transport is None or transport.is_closing():
                ipam.cancelled.append(request.path)
                return False
            await asyncio.sleep(0.02)
        return True

    def disabled() -> web.Response | None:
        return None if ipam.enabled else web.Response(status=404, text="404 page not found\n")

    async def allocate(request: web.Request) -> web.Response:
        ipam.calls.append(("POST", request.path_qs))
        if (off := disabled()) is not None:
            return off
        if not await until_ready(request):
            return web.Response(status=500, text="cancelled\n")
        ident = request.match_info["ident"]
        subnet = request.match_info.get("subnet")
        net = ipaddress.IPv4Network(subnet or "10.32.0.0/12")
        cidr = f"{net.network_address + ipam.next_host}/{net.prefixlen}"
        ipam.next_host += 1
        ipam.owned.setdefault(ident, []).append(cidr)
        return web.Response(text=cidr)

    async def claim(request: web.Request) -> web.Response:
        ipam.calls.append(("PUT", request.path_qs))
        if (off := disabled()) is not None:
            return off
        if not await until_ready(request):
            return web.Response(status=500, text="cancelled\n")
        ipam.owned.setdefault(request.match_info["ident"], []).append(request.match_info["subnet"])
        return web.Response(status=204)

    async def lookup(request: web.Request) -> web.Response:
        ipam.calls.append(("GET", request.path))
        if (off := disabled()) is not None:
            return off
        return web.Response(text=" ".join(ipam.owned.get(request.match_info["ident"], [])))

    async def free(request: web.Request) -> web.Response:
        ipam.calls.append(("DELETE", request.path))
        return disabled() or web.Response(status=204)

    async def ring(request: web.Request) -> web.Response:
        ipam.calls.append(("GET", request.path))
        if (off := disabled()) is not None:
            return off
        ok = await until_ready(request)
        return web.Response(status=200 if ok else 500)

    async def rmpeer(request: web.Request) -> web.Response:
        ipam.calls.append(("DELETE", request.path))
        return disabled() or web.Response(text=f"3 IPs taken over from {request.match_info['p']}\n")

    app.router.add_post("/ip/{ident}", allocate)
    app.router.add_post("/ip/{ident}/{subnet:.+/[0-9]+}", allocate)
    app.router.add_put("/ip/{ident}/{subnet:.+/[0-9]+}", claim)
    app.router.add_get("/ip/{ident}", lookup)
    app.router.add_delete("/ip/{ident}/{ip}", free)
    app.router.add_get("/ring", ring)
    app.router.add_delete("/peer/{p}", rmpeer)
    return app
