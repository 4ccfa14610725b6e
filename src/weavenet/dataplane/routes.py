"""Routes inside a container's namespace, for the CNI plugin (Weave's ``setupRoutes``).

A route is (destination, gateway): with a gateway it is a universe route via it, without
one a link route out of the interface. Adding a route that exists already is fine.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Sequence
from typing import NamedTuple

from weavenet.dataplane.netlink import DataplaneError, iproute, kernel_errors, link_index

RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTPROT_BOOT = 3


class Route(NamedTuple):
    dst: ipaddress.IPv4Network
    gw: ipaddress.IPv4Address | None = None


def _index(ipr: object, netns_path: str, ifname: str) -> int:
    index = link_index(ipr, ifname)
    if index is None:
        raise DataplaneError(f"no interface {ifname} in {netns_path}", errno.ENODEV)
    return index


def add_routes(netns_path: str, ifname: str, routes: Sequence[Route]) -> None:
    """Add `routes` out of `ifname` in the namespace `netns_path`, in order."""
    with iproute(netns_path) as ipr, kernel_errors(f"add routes on {ifname} in {netns_path}"):
        index = _index(ipr, netns_path, ifname)
        for route in routes:
            spec: dict[str, object] = {
                "dst": str(route.dst.network_address),
                "dst_len": route.dst.prefixlen,
                "oif": index,
                "proto": RTPROT_BOOT,
            }
            if route.gw is None:
                spec["scope"] = RT_SCOPE_LINK
            else:
                spec.update(gateway=str(route.gw), scope=RT_SCOPE_UNIVERSE)
            try:
                ipr.route("add", **spec)
            except Exception as exc:  # NetlinkError: EEXIST is fine, the rest is reported
                if getattr(exc, "code", None) != errno.EEXIST:
                    raise


def routes_of(netns_path: str, ifname: str) -> set[Route]:
    """The IPv4 routes of the main table that leave through `ifname` in `netns_path`."""
    with iproute(netns_path) as ipr, kernel_errors(f"read routes in {netns_path}"):
        index = _index(ipr, netns_path, ifname)
        found = set()
        for msg in ipr.get_routes(family=socket.AF_INET, table=254):
            if msg.get("RTA_OIF") != index:
                continue
            dst = ipaddress.IPv4Network(f"{msg.get('RTA_DST') or '0.0.0.0'}/{msg['dst_len']}")
            gw = msg.get("RTA_GATEWAY")
            found.add(Route(dst, ipaddress.IPv4Address(gw) if gw else None))
        return found
