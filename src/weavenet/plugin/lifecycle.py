"""Plugin containers through their life: what happens on Docker's start and destroy events.

On start (and for every running container when the router or the event stream comes
back), for each of the container's networks with the `weavemesh` driver:

- first start: the address Docker got from our IPAM driver is re-filed under the full
  container id (the ident the proxy and `weave attach` use);
- a later start (docker restart, stop + start, a daemon restart): Docker asked IPAM for
  a fresh address, because it never says for whom it asks; the container already holds
  one under its id, so its interface gets that one back (`readdress`) and the fresh one
  is freed;
- its name (`<container name>.<domain>`, Docker's own aliases too) is registered in
  WeaveDNS for that address.

On destroy, the container's addresses are freed and its names removed (Weave's script
frees a removed container's addresses the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import Any, Protocol

from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import IpamError
from weavenet.io.dns_attach import Listeners, Names  # the same slices of DNS as weave attach uses
from weavenet.plugin.ipam_driver import Ipam, is_container_id, to_cidr

log = logging.getLogger("weavenet.plugin")

Cidr = ipaddress.IPv4Interface


class Docker(Protocol):
    async def inspect(self, name: str) -> dict[str, Any] | None: ...

    async def network(self, name: str) -> dict[str, Any] | None: ...


def _endpoint_cidr(endpoint: dict[str, Any]) -> Cidr | None:
    ip, prefix = endpoint.get("IPAddress"), endpoint.get("IPPrefixLen")
    if not ip or not prefix:
        return None
    return Cidr(f"{ip}/{prefix}")


def _in(address: Cidr, subnet: CIDR) -> bool:
    return address.network == ipaddress.IPv4Network(str(subnet), strict=False)


def dns_names(info: dict[str, Any], endpoint: dict[str, Any], domain: str) -> list[str]:
    """`<name>.<domain>.` and the network aliases (qualified likewise), as Weave's watcher."""
    bare = str(info.get("Name") or "").lstrip("/")
    candidates = [bare, *(str(a) for a in endpoint.get("Aliases") or [])]
    names: list[str] = []
    for alias in candidates:
        if not alias or (len(alias) == 12 and alias == str(info.get("Id", ""))[:12]):
            continue  # Docker's short-id alias names nothing a user chose
        full = alias.rstrip(".") + "." if "." in alias else f"{alias}.{domain.strip('.')}."
        if full not in names:
            names.append(full)
    return names


class PluginContainers:
    def __init__(
        self, ipam: Ipam, docker: Docker, names: Names | None, listeners: Listeners | None
    ) -> None:
        self.ipam = ipam
        self.docker = docker
        self.names = names
        self.listeners = listeners
        self._our_networks: dict[str, bool] = {}  # network id -> driver is weavemesh
        self._lock = asyncio.Lock()

    async def _is_ours(self, network_id: str) -> bool:
        if not network_id:
            return False
        if network_id not in self._our_networks:
            info = await self.docker.network(network_id)
            self._our_networks[network_id] = info is not None and info.get("Driver") == "weavemesh"
        return self._our_networks[network_id]

    async def started(self, container_id: str) -> None:
        async with self._lock:
            info = await self.docker.inspect(container_id)
            if info is None or not (info.get("State") or {}).get("Running"):
                return
            networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
            for endpoint in networks.values():
                if await self._is_ours(str(endpoint.get("NetworkID") or "")):
                    await self._settle(info, endpoint)

    async def _settle(self, info: dict[str, Any], endpoint: dict[str, Any]) -> None:
        cid, given = str(info["Id"]), _endpoint_cidr(endpoint)
        if given is None:
            return
        held = self.ipam.lookup(cid, to_cidr(given.network))
        if not held:
            if self.ipam.owner(int(given.ip)) == str(given.ip):
                await self.ipam.transfer(str(given.ip), cid, int(given.ip))
            address = given
        else:
            address = Cidr(f"{ipaddress.IPv4Address(held[0].addr)}/{given.network.prefixlen}")
            if address != given:
                await self._readdress(info, given, address)
        await self._ensure_listener(address)
        self._register(info, endpoint, address)

    async def _ensure_listener(self, address: Cidr) -> None:
        """WeaveDNS answers in the container's subnet (as for `weave attach`)."""
        if self.listeners is None or not _in(address, self.ipam.default_subnet):
            return  # a network of its own (--subnet): no address taken from it behind its back
        try:
            await self.listeners.ensure_subnet(str(address))
        except Exception as exc:  # no free address for it, IPAM refusing: names still work
            log.warning("DNS: no listener for %s: %s", address.network, exc)

    async def _readdress(self, info: dict[str, Any], given: Cidr, address: Cidr) -> None:
        from weavenet.dataplane.plugin_veth import readdress

        pid = int((info.get("State") or {}).get("Pid") or 0)
        log.info("[plugin] %s restarted with %s: giving it back %s", info["Id"][:12], given,
                 address)  # fmt: skip
        await asyncio.to_thread(readdress, f"/proc/{pid}/ns/net", given, address)
        if self.ipam.owner(int(given.ip)) == str(given.ip):
            await self.ipam.free(str(given.ip), int(given.ip))

    def _register(self, info: dict[str, Any], endpoint: dict[str, Any], address: Cidr) -> None:
        if self.names is None:
            return
        for name in dns_names(info, endpoint, self.names.domain):
            self.names.add_entry(name, str(info["Id"]), int(address.ip))

    async def destroyed(self, container_id: str) -> None:
        """The container is gone: free what it holds, remove its names."""
        if not is_container_id(container_id):
            return
        async with self._lock:
            if self.names is not None:
                self.names.delete_entries(container=container_id)
            with contextlib.suppress(IpamError):  # it held no address
                await self.ipam.delete(container_id)
