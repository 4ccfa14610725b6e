"""The `weavemesh` IPAM driver (Weave's plugin/ipam/driver.go), over the router's IPAM.

Pools are named `weave-<subnet>-<iprange>` and carry a fake gateway (the network
address), as Weave's. Docker asks for an address without saying for which container, so
the address is filed under its own text (Go's NoContainerID "_"); when the container
starts, the life-cycle handler (plugin/lifecycle.py) re-files it under the full container
id, the ident `weave attach` and the proxy use, so the container keeps it across restarts
and `GET /ip/<id>` finds it. Docker releases the address at every stop: an address filed
under a container id stays (it is freed when the container is removed); an address still
filed under its own text is freed.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any, Protocol

from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator_requests import NO_CONTAINER_ID

log = logging.getLogger("weavenet.plugin")

GATEWAY_LABEL = "com.docker.network.gateway"
Net = ipaddress.IPv4Network


class PluginError(Exception):
    """A request the plugin refuses; Docker shows the text to the user."""


class Ipam(Protocol):
    """What the plugin uses of the router's IPAM (io.ipam_shell.IpamShell)."""

    default_subnet: CIDR

    async def allocate(self, ident: str, subnet: CIDR) -> CIDR: ...

    async def claim(self, ident: str, cidr: CIDR, no_error_on_unknown: bool) -> None: ...

    async def free(self, ident: str, addr: int) -> None: ...

    async def transfer(self, ident: str, to_ident: str, addr: int) -> CIDR: ...

    async def delete(self, ident: str) -> None: ...

    def owner(self, addr: int) -> str | None: ...

    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]: ...


def _net(text: str, what: str) -> Net:
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError as exc:
        raise PluginError(f"invalid {what} {text!r}: {exc}") from None


def to_cidr(net: Net | ipaddress.IPv4Interface) -> CIDR:
    return CIDR.parse(str(net))


def pool_id(subnet: Net, iprange: Net) -> str:
    return f"weave-{subnet}-{iprange}"


def split_pool_id(pool: str) -> tuple[Net, Net]:
    parts = pool.split("-")
    if len(parts) != 3 or parts[0] != "weave":
        raise PluginError(f"Unrecognized pool ID: {pool}")
    return _net(parts[1], "pool subnet"), _net(parts[2], "pool range")


def is_container_id(ident: str) -> bool:
    return len(ident) == 64 and all(c in "0123456789abcdef" for c in ident)


class IpamDriver:
    def __init__(self, ipam: Ipam) -> None:
        self.ipam = ipam

    async def capabilities(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"RequiresMACAddress": False, "RequiresRequestReplay": False}

    async def default_address_spaces(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "LocalDefaultAddressSpace": "weavelocal",
            "GlobalDefaultAddressSpace": "weaveglobal",
        }

    async def request_pool(self, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("V6"):
            raise PluginError("IPv6 is not supported by weavemesh")
        pool = str(req.get("Pool") or "")
        subnet = _net(pool, "subnet") if pool else _net(str(self.ipam.default_subnet), "subnet")
        sub_pool = str(req.get("SubPool") or "")
        iprange = _net(sub_pool, "ip range") if sub_pool else subnet
        log.info("[ipam] RequestPool %s %s", subnet, iprange)
        return {
            "PoolID": pool_id(subnet, iprange),
            "Pool": str(subnet),
            "Data": {GATEWAY_LABEL: str(subnet)},
        }

    async def release_pool(self, req: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def request_address(self, req: dict[str, Any]) -> dict[str, Any]:
        subnet, iprange = split_pool_id(str(req.get("PoolID") or ""))
        wanted = str(req.get("Address") or "")
        if wanted:
            ip = ipaddress.IPv4Interface(f"{_net(wanted, 'address').network_address}/"
                                         f"{subnet.prefixlen}")  # fmt: skip
            await self._claim(ip)
            return {"Address": str(ip), "Data": {}}
        got = await self.ipam.allocate(NO_CONTAINER_ID, to_cidr(iprange))
        ip = ipaddress.IPv4Interface(f"{ipaddress.IPv4Address(got.addr)}/{subnet.prefixlen}")
        log.info("[ipam] RequestAddress %s: %s", req.get("PoolID"), ip)
        return {"Address": str(ip), "Data": {}}

    async def _claim(self, ip: ipaddress.IPv4Interface) -> None:
        owner = self.ipam.owner(int(ip.ip))
        if owner is not None and is_container_id(owner):
            return  # `--ip` of a container restarting: it holds the address already
        await self.ipam.claim(NO_CONTAINER_ID, to_cidr(ip), False)

    async def release_address(self, req: dict[str, Any]) -> dict[str, Any]:
        subnet, _ = split_pool_id(str(req.get("PoolID") or ""))
        address = ipaddress.IPv4Address(str(req.get("Address") or "0.0.0.0"))
        if address == subnet.network_address:
            return {}  # the gateway we made up
        owner = self.ipam.owner(int(address))
        if owner == str(address):  # never claimed by a container: give it back
            await self.ipam.free(owner, int(address))
        return {}
