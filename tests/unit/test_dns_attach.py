"""DnsAttachments: attach registers the (qualified) name for every address after ensuring
the listeners; a partial detach tombstones the removed addresses only; restore brings back
the listeners and names of persisted attachments. The CLI's DNS argument helpers."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from typing import Any

import pytest

from weavenet.api.control import IpamRequestFailed
from weavenet.cli.dns_client import in_domain, qualify, split_dns_args
from weavenet.core.attachments import Attachment, AttachmentError, AttachRequest
from weavenet.core.errors import WeaveError
from weavenet.io.dns_attach import DnsAttachments

Cidr = ipaddress.IPv4Interface


class Keeper:
    """A table of attachments in memory (the keeper's contract, no kernel)."""

    def __init__(self, *restored: Attachment) -> None:
        self.table = {a.ident: a for a in restored}

    async def attach(self, req: AttachRequest) -> Attachment:
        att = Attachment(req.ident, req.spec, req.netns_path, "1:2", req.cidrs,
                         dns_name=req.dns_name)  # fmt: skip
        self.table[req.ident] = att
        return att

    async def detach(
        self, ident: str, netns_path: str | None, ips: Sequence[ipaddress.IPv4Address] | None
    ) -> tuple[list[Cidr], bool]:
        att = self.table[ident]
        removed = [c for c in att.cidrs if ips is None or c.ip in ips]
        left = tuple(c for c in att.cidrs if c not in removed)
        if not left:
            del self.table[ident]
        return removed, not left

    async def expose(self, cidr: Cidr, masquerade: bool) -> None: ...

    async def hide(self, cidr: Cidr) -> bool:
        return False

    def attachments(self) -> list[Attachment]:
        return list(self.table.values())

    def snapshot(self) -> dict[str, Any]:
        return {}


class Names:
    domain = "weave.local."

    def __init__(self) -> None:
        self.live: set[tuple[str, str, int]] = set()

    def add_entry(self, hostname: str, container: str, addr: int) -> object:
        self.live.add((hostname, container, addr))
        return None

    def delete_entries(
        self, container: str | None = None, addr: int | None = None, hostname: str | None = None
    ) -> object:
        self.live = {e for e in self.live if not (e[1] == container and addr in (None, e[2]))}
        return None


class Listeners:
    def __init__(self, fail: bool = False) -> None:
        self.subnets: list[str] = []
        self.fail = fail

    async def ensure_subnet(self, cidr: str) -> str:
        if self.fail:
            raise IpamRequestFailed("range 10.2.1.0/24 out of bounds: 10.32.0.0/12")
        self.subnets.append(str(Cidr(cidr).network))
        return "10.32.0.2"


A, B = Cidr("10.32.0.5/12"), Cidr("10.32.0.6/12")


def request(name: str | None, *cidrs: Cidr) -> AttachRequest:
    return AttachRequest("netns:c", "netns:c", "/run/netns/c", cidrs, dns_name=name)


def test_attach_registers_the_qualified_name_for_every_address() -> None:
    names, listeners = Names(), Listeners()
    control = DnsAttachments(Keeper(), names, listeners)
    att = asyncio.run(control.attach(request("web", A, B)))
    assert att.dns_name == "web.weave.local."
    assert names.live == {("web.weave.local.", "netns:c", int(A.ip)),
                          ("web.weave.local.", "netns:c", int(B.ip))}  # fmt: skip
    assert listeners.subnets == ["10.32.0.0/12", "10.32.0.0/12"]


def test_partial_detach_tombstones_only_the_removed_address() -> None:
    names = Names()
    control = DnsAttachments(Keeper(), names, Listeners())
    asyncio.run(control.attach(request("web", A, B)))
    removed, dropped = asyncio.run(control.detach("netns:c", None, [A.ip]))
    assert (removed, dropped) == ([A], False)
    assert names.live == {("web.weave.local.", "netns:c", int(B.ip))}


def test_name_outside_the_domain_is_refused_before_anything_is_wired() -> None:
    keeper = Keeper()
    control = DnsAttachments(keeper, Names(), Listeners())
    with pytest.raises(AttachmentError, match="not in the DNS domain"):
        asyncio.run(control.attach(request("web.example.com", A)))
    assert keeper.table == {}


def test_a_subnet_without_listener_still_attaches_and_registers() -> None:
    names = Names()
    control = DnsAttachments(Keeper(), names, Listeners(fail=True))
    assert asyncio.run(control.attach(request("web", A))).cidrs == (A,)
    assert names.live == {("web.weave.local.", "netns:c", int(A.ip))}


def test_restore_registers_persisted_names_and_ensures_listeners() -> None:
    old = Attachment("netns:c", "netns:c", "/run/netns/c", "1:2", (A,), dns_name="db.weave.local.")
    names, listeners = Names(), Listeners()
    asyncio.run(DnsAttachments(Keeper(old), names, listeners).restore())
    assert names.live == {("db.weave.local.", "netns:c", int(A.ip))}
    assert listeners.subnets == ["10.32.0.0/12"]


def test_cli_name_helpers() -> None:
    assert qualify("web", "weave.local.") == "web.weave.local."
    assert qualify("web.weave.local", "weave.local.") == "web.weave.local."
    assert in_domain("Web.Weave.Local.", "weave.local.")
    assert not in_domain("weave.local.", "weave.local.")
    assert split_dns_args(["10.0.0.1", "10.0.0.2", "netns:c"]) == (
        ["10.0.0.1", "10.0.0.2"],
        "netns:c",
    )
    assert split_dns_args(["10.0.0.1"]) == (["10.0.0.1"], None)
    with pytest.raises(WeaveError, match="invalid IP address"):
        split_dns_args(["nope", "netns:c"])
