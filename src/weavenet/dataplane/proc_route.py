"""The main routing table from /proc/net/route, for `weave launch`'s range check.

`weave launch` runs once per router start; reading the table through netlink would import
pyroute2 (a quarter of a CPU-second) into the CLI for one question. /proc/net/route lists
exactly the main table's IPv4 routes of the reader's namespace.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

PROC_ROUTE = Path("/proc/net/route")


def _hex_ip(text: str) -> ipaddress.IPv4Address:
    """An address as /proc/net/route prints it: 8 hex digits in host byte order."""
    return ipaddress.IPv4Address(socket.inet_ntoa(struct.pack("=I", int(text, 16))))


def main_routes(table: str) -> Iterator[tuple[str, ipaddress.IPv4Network]]:
    """(interface, destination) of every route in the text of /proc/net/route but the
    default route (Go's CheckNetworkFree skips routes without a destination too)."""
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest, mask = _hex_ip(fields[1]), _hex_ip(fields[7])
        if int(mask) == 0:
            continue
        yield fields[0], ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)


def overlapping_main_route(
    net: ipaddress.IPv4Network, ignore: Sequence[str] = (), table: str | None = None
) -> ipaddress.IPv4Network | None:
    """A main-table route overlapping `net`, not counting routes via the interfaces named
    in `ignore` (the weave bridge's own); None if `net` is free."""
    text = PROC_ROUTE.read_text() if table is None else table
    for iface, found in main_routes(text):
        if iface not in ignore and found.overlaps(net):
            return found
    return None
