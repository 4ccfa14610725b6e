"""Where the DNS server listens: one address on the weave bridge in every attached subnet.

Weave listens on the Docker bridge address, which a container with no Docker network
cannot reach. Here every container reaches its router's DNS server over its own weave
interface, in its own subnet, whatever else it has:

- when the first container is attached in a subnet, the integrator's attach path calls
  :meth:`DnsListeners.ensure_subnet` with the container's CIDR;
- the address is the bridge's own address in that subnet when it has one (``weave
  expose``, or ours from an earlier run), else the address IPAM holds for the ident
  ``weave:dns`` in that subnet (persisted by IPAM, so it survives restarts), else a fresh
  one claimed from IPAM under ``weave:dns`` (no NAT: it is only put on the bridge);
- the address goes on the bridge (dataplane.dns_address, idempotent) and one DnsServer
  (UDP and TCP, port 53) serves on it; the subnet joins the networks we recurse for;
- with ``--dns-listen-address`` none of this happens: that one address serves everybody.

Listen addresses are never upstream servers (DnsShell excludes them all).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Protocol

from weavenet.core.dns.upstream import DNS_PORT
from weavenet.core.errors import WeaveError
from weavenet.core.ipam.address import CIDR
from weavenet.io.dns_shell import DnsShell

log = logging.getLogger("weavenet.dns")

DNS_IDENT = "weave:dns"
DEFAULT_BRIDGE = "weave"

Iface = ipaddress.IPv4Interface
Net = ipaddress.IPv4Network


class DnsListenError(WeaveError):
    """No address could be found for the DNS server in a subnet."""


class AddressSource(Protocol):
    """The IPAM calls used (weavenet.io.ipam_shell.IpamShell satisfies it)."""

    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]: ...
    async def allocate(self, ident: str, subnet: CIDR) -> CIDR: ...


class BridgeAddresses(Protocol):
    """The kernel calls used (default: weavenet.dataplane.dns_address in a thread)."""

    def existing(self, network: Net) -> Iface | None: ...
    def ensure(self, cidr: Iface) -> None: ...


class KernelBridge:
    """BridgeAddresses on the real bridge ``bridge`` (in ``netns``, None: ours)."""

    def __init__(self, bridge: str = DEFAULT_BRIDGE, netns: str | None = None) -> None:
        self.bridge = bridge
        self.netns = netns

    def existing(self, network: Net) -> Iface | None:
        from weavenet.dataplane.dns_address import bridge_address_in

        return bridge_address_in(network, self.bridge, self.netns)

    def ensure(self, cidr: Iface) -> None:
        from weavenet.dataplane.dns_address import ensure_dns_address

        if ensure_dns_address(cidr, self.bridge, self.netns):
            log.info("DNS: added %s to bridge %s", cidr, self.bridge)


class DnsListeners:
    def __init__(
        self,
        shell: DnsShell,
        ipam: AddressSource | None,
        bridge: BridgeAddresses | None = None,
        *,
        port: int = DNS_PORT,
    ) -> None:
        self.shell = shell
        self.ipam = ipam
        self.bridge = bridge if bridge is not None else KernelBridge()
        self.port = port
        self._by_subnet: dict[Net, str] = {}
        self._pending: dict[Net, asyncio.Task[str]] = {}

    async def ensure_subnet(self, cidr: str) -> str:
        """The DNS address for containers in ``cidr`` (e.g. "10.32.0.5/12"), serving it if
        it was not yet. DnsListenError (what to do next) when no address can be had."""
        net = ipaddress.IPv4Interface(cidr).network
        self.shell.allow_network(str(net))
        if self.shell.settings.listen_address is not None:
            host, _port = self.shell.listen_addresses()[0]
            return host
        if net in self._by_subnet:
            return self._by_subnet[net]
        task = self._pending.get(net)
        if task is None:  # concurrent attaches in one subnet share one set-up
            task = asyncio.get_running_loop().create_task(self._serve_subnet(net))
            self._pending[net] = task
            task.add_done_callback(lambda _t: self._pending.pop(net, None))
        return await asyncio.shield(task)

    async def _serve_subnet(self, net: Net) -> str:
        iface = await self._address_for(net)
        await asyncio.to_thread(self.bridge.ensure, iface)
        try:
            host, port = await self.shell.listen(str(iface.ip), self.port, str(net))
        except OSError as exc:
            raise DnsListenError(
                f"cannot serve DNS on {iface.ip}:{self.port}: {exc.strerror or exc}; "
                "free that port or give --dns-listen-address"
            ) from exc
        self._by_subnet[net] = host
        log.info("DNS: serving subnet %s on %s:%d", net, host, port)
        return host

    async def _address_for(self, net: Net) -> Iface:
        existing = await asyncio.to_thread(self.bridge.existing, net)
        if existing is not None:
            return existing
        if self.ipam is None:
            raise DnsListenError(
                f"no address for the DNS server in {net}: IPAM is disabled; "
                f"run 'weave expose' for the subnet or give --dns-listen-address"
            )
        subnet = CIDR.parse(str(net))
        held = self.ipam.lookup(DNS_IDENT, subnet)
        cidr = held[0] if held else await self.ipam.allocate(DNS_IDENT, subnet)
        return ipaddress.IPv4Interface(str(cidr))

    def addresses(self) -> list[str]:
        """Every listen IP, one per served subnet (or the one --dns-listen-address)."""
        if self.shell.settings.listen_address is not None:
            return [h for h, _ in self.shell.listen_addresses()]
        return list(self._by_subnet.values())

    def address_for(self, ip: str) -> str | None:
        """The listen IP for a container at ``ip`` (None if its subnet is not served)."""
        addr = ipaddress.IPv4Address(ip)
        return next((h for n, h in self._by_subnet.items() if addr in n), None)

    async def close(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        await self.shell.stop()
        self._by_subnet.clear()
