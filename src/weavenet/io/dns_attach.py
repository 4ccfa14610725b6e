"""Attachments with WeaveDNS: the attach endpoints' control when DNS is on.

It wraps the router's AttachmentKeeper (same interface, api.attach_http.AttachControl):

- attach: the DNS listener for each of the container's subnets is ensured first (so that
  the CLI can write the container's resolv.conf; a subnet that can have none is logged),
  then the container is wired, then its
  name (the request's ``name``, qualified with the domain when it has no dot) is
  registered for every address of the attachment;
- detach: a partial detach tombstones the names of the removed addresses; a detach that
  drops the attachment goes through the keeper's release callback, which tombstones all
  of the container's names (the daemon wires that callback), as does a container's death;
- restore: after a restart, every persisted attachment gets its listeners and its names
  back (the name is in the attachment record).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from weavenet.api.control import IpamRequestFailed
from weavenet.core.attachments import Attachment, AttachmentError, AttachRequest
from weavenet.core.dns.nameserver import is_subdomain
from weavenet.core.errors import WeaveError

log = logging.getLogger("weavenet.dns")

Cidr = ipaddress.IPv4Interface


class Keeper(Protocol):
    """What is used of io.attachments.AttachmentKeeper."""

    async def attach(self, req: AttachRequest) -> Attachment: ...

    async def detach(
        self, ident: str, netns_path: str | None, ips: Sequence[ipaddress.IPv4Address] | None
    ) -> tuple[list[Cidr], bool]: ...

    async def expose(self, cidr: Cidr, masquerade: bool) -> None: ...

    async def hide(self, cidr: Cidr) -> bool: ...

    def attachments(self) -> list[Attachment]: ...

    def snapshot(self) -> dict[str, Any]: ...


class Names(Protocol):
    """What is used of io.dns_shell.DnsShell."""

    @property
    def domain(self) -> str: ...

    def add_entry(self, hostname: str, container: str, addr: int) -> object: ...

    def delete_entries(
        self, container: str | None = None, addr: int | None = None, hostname: str | None = None
    ) -> object: ...


class Listeners(Protocol):
    """What is used of io.dns_listeners.DnsListeners."""

    async def ensure_subnet(self, cidr: str) -> str: ...


def qualify(name: str, domain: str) -> str:
    """``web`` -> ``web.weave.local.``; a dotted name is taken as a full name."""
    bare = name.rstrip(".")
    if "." in bare:
        return bare + "."
    return f"{bare}.{domain.strip('.')}."


class DnsAttachments:
    def __init__(self, keeper: Keeper, names: Names, listeners: Listeners | None) -> None:
        self.keeper = keeper
        self.names = names
        self.listeners = listeners

    def _checked_name(self, name: str | None) -> str | None:
        if name is None:
            return None
        full = qualify(name, self.names.domain)
        if not is_subdomain(full, self.names.domain):
            raise AttachmentError(
                f"name {name!r} is not in the DNS domain {self.names.domain}: "
                f"give a name ending in .{self.names.domain.strip('.')} or no dot at all"
            )
        return full

    async def _ensure_listeners(self, cidrs: Sequence[Cidr]) -> None:
        """A subnet without a listener (no free address, outside the IPAM range) still gets
        its container attached and named: others resolve it; it has no resolv.conf."""
        if self.listeners is None:
            return
        for cidr in cidrs:
            try:
                await self.listeners.ensure_subnet(str(cidr))
            except (WeaveError, IpamRequestFailed) as exc:  # no address, IPAM refusing
                log.warning("DNS: no listener for %s: %s", cidr.network, exc)

    def _register(self, att: Attachment) -> None:
        if att.dns_name is None:
            return
        for cidr in att.cidrs:
            self.names.add_entry(att.dns_name, att.ident, int(cidr.ip))

    async def attach(self, req: AttachRequest) -> Attachment:
        name = self._checked_name(req.dns_name)
        await self._ensure_listeners(req.cidrs)
        if name != req.dns_name:
            req = AttachRequest(
                req.ident, req.spec, req.netns_path, req.cidrs, req.multicast_route, name
            )
        att = await self.keeper.attach(req)
        self._register(att)
        return att

    async def detach(
        self, ident: str, netns_path: str | None, ips: Sequence[ipaddress.IPv4Address] | None
    ) -> tuple[list[Cidr], bool]:
        removed, dropped = await self.keeper.detach(ident, netns_path, ips)
        if not dropped:  # a drop tombstones every name through the release callback
            for cidr in removed:
                self.names.delete_entries(container=ident, addr=int(cidr.ip))
        return removed, dropped

    async def expose(self, cidr: Cidr, masquerade: bool) -> None:
        await self.keeper.expose(cidr, masquerade)

    async def hide(self, cidr: Cidr) -> bool:
        return await self.keeper.hide(cidr)

    def snapshot(self) -> dict[str, Any]:
        return self.keeper.snapshot()

    async def restore(self) -> None:
        """Listeners and names for the attachments restored from the store."""
        for att in self.keeper.attachments():
            await self._ensure_listeners(att.cidrs)
            self._register(att)
