"""CNI results: built once, printed in the schema of the version the caller asked for.

1.0.0: interfaces (name, mac, sandbox), ips (address, gateway, interface), routes, dns;
0.3.x and 0.4.0 add ``"version": "4"`` to each ip; 0.1.0 and 0.2.0 have one ``ip4``
object (ip, gateway, routes). Results of an IPAM plugin we ran, and ``prevResult``, are
read back from any of those schemas.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from weavenet.cni.errors import DELEGATE_FAILED, INVALID_CONFIG, CniError

LEGACY = ("0.1.0", "0.2.0")
Net = ipaddress.IPv4Network
Ip = ipaddress.IPv4Address
RouteT = tuple[Net, Ip | None]


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str
    sandbox: str = ""


@dataclass(frozen=True)
class IpConfig:
    address: ipaddress.IPv4Interface
    gateway: Ip | None = None
    interface: int | None = None


@dataclass
class Result:
    ips: list[IpConfig]
    routes: list[RouteT] = field(default_factory=list)
    interfaces: list[Interface] = field(default_factory=list)
    dns: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self, version: str) -> dict[str, Any]:
        routes = [_route_json(r) for r in self.routes]
        if version in LEGACY:
            out: dict[str, Any] = {"cniVersion": version}
            if self.ips:
                first = self.ips[0]
                ip4: dict[str, Any] = {"ip": str(first.address)}
                if first.gateway is not None:
                    ip4["gateway"] = str(first.gateway)
                if routes:
                    ip4["routes"] = routes
                out["ip4"] = ip4
            out["dns"] = dict(self.dns)
            return out
        ips = []
        for ip in self.ips:
            item: dict[str, Any] = {"address": str(ip.address)}
            if version != "1.0.0":
                item = {"version": "4", **item}
            if ip.gateway is not None:
                item["gateway"] = str(ip.gateway)
            if ip.interface is not None:
                item["interface"] = ip.interface
            ips.append(item)
        out = {"cniVersion": version}
        if self.interfaces:
            out["interfaces"] = [_iface_json(i) for i in self.interfaces]
        out["ips"] = ips
        if routes:
            out["routes"] = routes
        out["dns"] = dict(self.dns)
        return out


def _route_json(route: RouteT) -> dict[str, str]:
    out = {"dst": str(route[0])}
    if route[1] is not None:
        out["gw"] = str(route[1])
    return out


def _iface_json(iface: Interface) -> dict[str, str]:
    out = {"name": iface.name, "mac": iface.mac}
    if iface.sandbox:
        out["sandbox"] = iface.sandbox
    return out


def _bad(what: str, data: Any, code: int) -> CniError:
    return CniError(code, f"{what} is not a valid CNI result: {data!r:.200}")


def _parse_routes(items: Any, what: str, code: int) -> list[RouteT]:
    routes: list[RouteT] = []
    for r in items or []:
        try:
            routes.append((Net(r["dst"]), Ip(r["gw"]) if r.get("gw") else None))
        except (KeyError, TypeError, ValueError):
            raise _bad(what, r, code) from None
    return routes


def parse_result(data: Any, what: str = "prevResult", code: int = INVALID_CONFIG) -> Result:
    """A result (or prevResult) of any supported version; IPv6 entries are skipped."""
    if not isinstance(data, dict):
        raise _bad(what, data, code)
    try:
        if "ip4" in data:  # 0.1.0 / 0.2.0
            ip4 = data["ip4"]
            gw = Ip(ip4["gateway"]) if ip4.get("gateway") else None
            ips = [IpConfig(ipaddress.IPv4Interface(ip4["ip"]), gw)]
            return Result(ips, _parse_routes(ip4.get("routes"), what, code), [],
                          data.get("dns") or {})  # fmt: skip
        ips = []
        for item in data.get("ips") or []:
            addr = ipaddress.ip_interface(item["address"])
            if isinstance(addr, ipaddress.IPv4Interface):
                gw = Ip(item["gateway"]) if item.get("gateway") else None
                ips.append(IpConfig(addr, gw, item.get("interface")))
        ifaces = [
            Interface(str(i["name"]), str(i.get("mac", "")), str(i.get("sandbox", "")))
            for i in data.get("interfaces") or []
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _bad(what, data, code) from None
    return Result(ips, _parse_routes(data.get("routes"), what, code), ifaces,
                  data.get("dns") or {})  # fmt: skip


def delegate_result(data: Any) -> Result:
    result = parse_result(data, "the IPAM plugin's answer", DELEGATE_FAILED)
    if not result.ips:
        raise CniError(DELEGATE_FAILED, "the IPAM plugin allocated no IPv4 address")
    return result


def interface_ips(result: Result, index: int) -> Sequence[IpConfig]:
    return [ip for ip in result.ips if ip.interface in (None, index)]
