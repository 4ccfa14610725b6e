"""A fake router for CLI tests: Weave's IPAM API (surface 2.3) with a ring that is ready or
not, the report's IPAM Status/Awaiting, and our attachment routes over an in-memory table."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from weavenet.api.http import make_app
from weavenet.api.testing import FakeRouterControl
from weavenet.core.attachments import (
    Attachment,
    AttachmentError,
    AttachmentTable,
    AttachRequest,
)
from weavenet.core.ipam.address import CIDR, format_address

Cidr = ipaddress.IPv4Interface


class FakeAttachments:
    """AttachControl over an AttachmentTable; records what it was asked."""

    def __init__(self) -> None:
        self.table = AttachmentTable()
        self.exposed: list[tuple[Cidr, bool]] = []
        self.requests: list[AttachRequest] = []
        self.refuse: str | None = None  # attach fails with this error

    async def attach(self, req: AttachRequest) -> Attachment:
        self.requests.append(req)
        if self.refuse is not None:
            raise AttachmentError(self.refuse, internal=True)
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
    """IpamControl in memory: allocation hands out the lowest unused host of the subnet;
    while `ready` is false, allocate/claim/prime wait (as the allocator does without a ring).
    `calls` records (method, ident, cidr text); `cancelled` the requests given up on."""

    enabled: bool = True
    ready: bool = True
    ready_after_reports: int | None = None  # the ring becomes ready after N report calls
    status: str = "ready"
    awaiting: str = ""
    default_subnet: CIDR = field(default_factory=lambda: CIDR.parse("10.32.0.0/12"))
    owned_by: dict[str, list[CIDR]] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    reports: int = 0

    def report(self) -> dict[str, Any]:
        self.reports += 1
        if self.ready_after_reports is not None and self.reports >= self.ready_after_reports:
            self.ready, self.status, self.awaiting = True, "ready", ""
        return {"Status": self.status, "Awaiting": self.awaiting}

    async def _until_ready(self, what: str) -> None:
        try:
            while not self.ready:
                await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            self.cancelled.append(what)
            raise

    async def allocate(self, ident: str, subnet: CIDR) -> CIDR:
        self.calls.append(("allocate", ident, str(subnet)))
        await self._until_ready(f"allocate {ident}")
        used = {c.addr for cidrs in self.owned_by.values() for c in cidrs}
        start = subnet.host_range().start
        addr = next(a for a in range(start, start + 1000) if a not in used)
        cidr = CIDR(addr, subnet.prefix_len)
        self.owned_by.setdefault(ident, []).append(cidr)
        return cidr

    async def claim(self, ident: str, cidr: CIDR, no_error_on_unknown: bool) -> None:
        self.calls.append(("claim", ident, str(cidr)))
        await self._until_ready(f"claim {ident}")
        self.owned_by.setdefault(ident, []).append(cidr)

    async def prime(self) -> None:
        self.calls.append(("prime", "", ""))
        await self._until_ready("prime")

    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]:
        self.calls.append(("lookup", ident, str(subnet or "")))
        return list(self.owned_by.get(ident, []))

    def owned(self) -> dict[str, list[CIDR]]:
        return {k: list(v) for k, v in self.owned_by.items()}

    async def free(self, ident: str, addr: int) -> None:
        self.calls.append(("free", ident, format_address(addr)))

    async def delete(self, ident: str) -> None:
        self.calls.append(("delete", ident, ""))

    async def shutdown(self) -> None:
        self.calls.append(("shutdown", "", ""))

    def cancel_all(self) -> None:
        """The server is stopping: nothing here waits beyond the test's own client."""
        self.calls.append(("cancel_all", "", ""))

    async def admin_takeover(self, peer: str) -> int:
        self.calls.append(("rmpeer", peer, ""))
        return 3


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
    """The real HTTP layer (make_app: IPAM and attachment routes) over the fakes."""
    return make_app(IpamReportControl(ipam), ipam if ipam.enabled else None, attachments)
