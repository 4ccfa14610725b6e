"""Host-side checks and clean-up for `weave launch` and `weave reset`."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from weavenet.dataplane.attach import VETH_PREFIX
from weavenet.dataplane.bridge import delete_link, remove_firewall
from weavenet.dataplane.netlink import iproute, kernel_errors, link_index

RT_TABLE_MAIN = 254


def overlapping_route(
    net: ipaddress.IPv4Network, ignore: Sequence[str] = (), netns: str | None = None
) -> ipaddress.IPv4Network | None:
    """A route of the main table that overlaps `net`, not counting routes via the links
    named in `ignore` (the weave bridge's own), as Go's CheckNetworkFree; None if free."""
    with iproute(netns) as ipr, kernel_errors("list routes"):
        skip = {link_index(ipr, name) for name in ignore} - {None}
        for route in ipr.get_routes(family=socket.AF_INET):
            dst = route.get("RTA_DST")
            table = route.get("RTA_TABLE") or route["table"]
            if dst is None or table != RT_TABLE_MAIN or route.get("RTA_OIF") in skip:
                continue
            found = ipaddress.IPv4Network(f"{dst}/{route['dst_len']}", strict=False)
            if found.overlaps(net):
                return found
    return None


def container_ports(bridge: str, netns: str | None = None) -> list[str]:
    """Host ends of our container veths (vethwepl*) that are ports of `bridge`."""
    with iproute(netns) as ipr, kernel_errors(f"list ports of {bridge}"):
        index = link_index(ipr, bridge)
        if index is None:
            return []
        return [
            str(link.get_attr("IFLA_IFNAME"))
            for link in ipr.get_links()
            if str(link.get_attr("IFLA_IFNAME") or "").startswith(VETH_PREFIX)
            and link.get_attr("IFLA_MASTER") == index
        ]


def reset_host(bridge: str, tap: str, netns: str | None = None) -> list[str]:
    """`weave reset`: delete the container ports, the bridge, its TAP and our firewall
    table. Returns the links deleted."""
    deleted = [p for p in container_ports(bridge, netns) if delete_link(p, netns)]
    deleted += [name for name in (bridge, tap) if delete_link(name, netns)]
    remove_firewall(netns)
    return deleted
