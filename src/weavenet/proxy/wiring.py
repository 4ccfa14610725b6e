"""Wiring a started container to weave, as the proxy does on start and restart (Weave's
``Proxy.attach``): allocate or claim its WEAVE_CIDR addresses under its full id, attach it
through the router's attachments (which keep it across restarts and drop it, freeing its
addresses and names, when it is removed), register its name, rewrite its /etc/hosts.

Everything goes through the router's public interfaces: IPAM (io.ipam_shell), the
attachment control (io.attachments / io.dns_attach), the DNS listeners (io.dns_listeners).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from weavenet.api.control import IpamCancelled, IpamRequestFailed
from weavenet.cli.ipam_client import NET_DISABLED, AddressArg, Claim, Subnet
from weavenet.core.attachments import Attachment, AttachmentError, AttachRequest
from weavenet.core.dns.nameserver import is_subdomain
from weavenet.core.errors import WeaveError
from weavenet.core.ipam.address import CIDR
from weavenet.proxy import rules
from weavenet.proxy.rules import Json, ProxySettings, Skip

log = logging.getLogger("weavenet.proxy")

Cidr = ipaddress.IPv4Interface
DNS_SETUP_TIMEOUT = 30.0


class Addresses(Protocol):
    """What is used of io.ipam_shell.IpamShell."""

    default_subnet: CIDR

    async def allocate(self, ident: str, subnet: CIDR) -> CIDR: ...

    async def claim(self, ident: str, cidr: CIDR, no_error_on_unknown: bool) -> None: ...

    async def delete(self, ident: str) -> None: ...


class Attacher(Protocol):
    """What is used of the router's attachment control (api.attach_http.AttachControl)."""

    async def attach(self, req: AttachRequest) -> Attachment: ...

    async def detach(
        self, ident: str, netns_path: str | None, ips: Sequence[ipaddress.IPv4Address] | None
    ) -> tuple[list[Cidr], bool]: ...

    def snapshot(self) -> dict[str, Any]: ...


class DnsServers(Protocol):
    """What is used of io.dns_listeners.DnsListeners."""

    async def ensure_subnet(self, cidr: str) -> str: ...


class WiringError(WeaveError):
    """The container could not be wired (the message says why)."""


def attached(attacher: Attacher, ident: str) -> dict[str, Any] | None:
    """The attachment record of container `ident`, if the router has one."""
    records = attacher.snapshot().get("attachments", [])
    return next((r for r in records if r.get("ident") == ident), None)


class Wiring:
    def __init__(
        self,
        settings: ProxySettings,
        ipam: Addresses | None,
        attacher: Attacher,
        dns: DnsServers | None,
    ) -> None:
        self.settings = settings
        self.ipam = ipam
        self.attacher = attacher
        self.dns = dns

    def _subnets(self, args: Sequence[AddressArg]) -> list[ipaddress.IPv4Network]:
        nets: list[ipaddress.IPv4Network] = []
        for arg in args or [Subnet(None)]:
            if isinstance(arg, Claim):
                nets.append(arg.cidr.network)
            elif arg.subnet is not None:
                nets.append(arg.subnet.network)
            elif self.ipam is not None:
                nets.append(ipaddress.IPv4Network(str(self.ipam.default_subnet)))
        return list(dict.fromkeys(nets))

    async def dns_servers(self, args: Sequence[AddressArg]) -> list[str]:
        """The router's DNS address in each of the container's subnets (set up now, so
        that the container's resolv.conf can name it before it has an address)."""
        if self.dns is None or self.settings.without_dns:
            return []
        servers = []
        for net in self._subnets(args):
            try:
                task = self.dns.ensure_subnet(str(net))
                servers.append(await asyncio.wait_for(task, DNS_SETUP_TIMEOUT))
            except (TimeoutError, WeaveError, IpamRequestFailed, IpamCancelled) as exc:
                log.warning("proxy: no weave DNS server for containers in %s: %s", net, exc)
        return list(dict.fromkeys(servers))

    async def _one(self, ident: str, arg: AddressArg) -> Cidr:
        if isinstance(arg, Claim):
            if self.ipam is not None:
                await self.ipam.claim(ident, CIDR.parse(str(arg.cidr)), False)
            return arg.cidr
        if self.ipam is None:
            raise WiringError(NET_DISABLED)
        subnet = self.ipam.default_subnet
        if arg.subnet is not None:
            subnet = CIDR.parse(str(arg.subnet.network))
        return Cidr(str(await self.ipam.allocate(ident, subnet)))

    async def allocate(self, ident: str, args: Sequence[AddressArg]) -> list[Cidr]:
        """Weave's allocateCIDRs: no address means net:default."""
        cidrs = []
        for arg in args or [Subnet(None)]:
            try:
                cidrs.append(await self._one(ident, arg))
            except IpamCancelled:
                raise WiringError(f"the allocation for {ident} was cancelled") from None
            except IpamRequestFailed as exc:
                raise WiringError(f"for {_show(arg)!r}: {exc}") from None
        return cidrs

    def dns_name(self, info: Json) -> str | None:
        """The container's FQDN, if it is in the weave domain (else it is not registered)."""
        name = rules.fqdn(info)
        if self.settings.without_dns or name.startswith(".") or name.endswith("."):
            return None
        return name if is_subdomain(name, self.settings.dns_domain) else None

    async def attach(self, info: Json) -> Attachment | None:
        """Wire a container created through the proxy; None if it is not ours or not
        running. WiringError if the addresses or the attachment cannot be had."""
        ident = str(info.get("Id") or "")
        decision = rules.container_cidrs(info, self.settings.no_default_ipalloc)
        if isinstance(decision, Skip):
            log.debug("proxy: leaving container %s alone because %s", ident[:12], decision.reason)
            return None
        state = info.get("State") or {}
        pid = int(state.get("Pid") or 0)
        if not state.get("Running") or pid <= 0:
            return None
        shown = " ".join(_show(a) for a in decision)
        log.info('Attaching container %s with WEAVE_CIDR "%s" to weave network', ident, shown)
        cidrs = await self.allocate(ident, decision)
        req = AttachRequest(
            ident=ident,
            spec=str(info.get("Name") or ident).lstrip("/"),
            netns_path=f"/proc/{pid}/ns/net",
            cidrs=tuple(cidrs),
            multicast_route=not self.settings.no_multicast_route,
            dns_name=self.dns_name(info),
        )
        if not self.settings.no_rewrite_hosts:  # first: the command may be quick to end
            await self._rewrite_hosts(info, pid, cidrs)
        started = time.monotonic()
        try:
            att = await self.attacher.attach(req)
        except AttachmentError as exc:
            raise WiringError(str(exc)) from None
        shown = " ".join(str(c) for c in att.cidrs)
        took = (time.monotonic() - started) * 1000
        log.debug("proxy: attached %s (%s) in %.0f ms", ident[:12], shown, took)
        return att

    async def _rewrite_hosts(self, info: Json, pid: int, cidrs: Sequence[Cidr]) -> None:
        extra = (info.get("HostConfig") or {}).get("ExtraHosts") or []
        content = rules.hosts_content(rules.fqdn(info), cidrs, [str(e) for e in extra])
        try:
            await asyncio.to_thread(_write_in_place, f"/proc/{pid}/root/etc/hosts", content)
        except OSError as exc:  # the original /etc/hosts is good enough in most cases
            log.error("Error from rewriting container's /etc/hosts: %s", exc)

    async def abandon(self, ident: str) -> None:
        """The container ended while it was being attached: free what it was given."""
        if self.ipam is None:
            return
        try:
            await self.ipam.delete(ident)
        except WeaveError as exc:  # it had nothing
            log.debug("proxy: release %s: %s", ident[:12], exc)

    async def forget(self, ident: str) -> None:
        """The container was removed: drop its attachment (freeing addresses and names)."""
        if attached(self.attacher, ident) is None:
            return
        try:
            await self.attacher.detach(ident, None, None)
        except AttachmentError as exc:
            log.warning("proxy: detach %s: %s", ident[:12], exc)


def _show(arg: AddressArg) -> str:
    if isinstance(arg, Claim):
        return f"ip:{arg.cidr}"
    return "net:default" if arg.subnet is None else f"net:{arg.subnet.network}"


def _write_in_place(path: str, content: str) -> None:
    """Overwrite the file the container has bind-mounted (same inode, so it sees it)."""
    with open(path, "r+") as f:
        f.write(content)
        f.truncate()
