"""Attach containers to the weave bridge (`weave attach`, `detach`, `ps`).

A container gets a veth pair: the host end `vethwepl<id>` is a hairpin port of the bridge,
the container end is `ethwe` with the weave addresses, the bridge MTU and a link route for
multicast (224.0.0.0/4). No default route is ever added. A gratuitous ARP announces each
address so neighbours holding a stale MAC (say, after a re-attach) update it.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import re
import socket
import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import msgspec.structs

from weavenet.core.attachments import LinkState
from weavenet.dataplane.bridge import DEFAULT_BRIDGE, require_bridge
from weavenet.dataplane.containers import ContainerRef, ensure_not_host
from weavenet.dataplane.netlink import (
    LINK_GONE,
    DataplaneError,
    find_link,
    held_netns,
    ignoring,
    iproute,
    ipv4_addresses,
    kernel_errors,
    link_index,
    link_info,
    link_kind,
    run_in_netns,
)
from weavenet.dataplane.offload import GSO_MAX_SIZE

CONTAINER_IFNAME = "ethwe"
VETH_PREFIX = "vethwepl"
VETH_PEER_PREFIX = "vethwepg"
PORT_PREFIXES = (VETH_PREFIX, "vethwl")  # ours, and the Docker plugin's (plugin_veth.py)
IFNAMSIZ = 15
MULTICAST_NET = ipaddress.IPv4Network("224.0.0.0/4")
RT_SCOPE_LINK = 253
RTPROT_BOOT = 3  # what `ip route add` uses
ETH_P_ARP = 0x0806
_HEX_ID = re.compile(r"[0-9a-f]{12,64}")

Cidrs = Sequence[ipaddress.IPv4Interface]


class AttachResult(msgspec.Struct, frozen=True):
    ifname: str  # host end of the veth
    mac: str  # MAC of ethwe
    cidrs: tuple[ipaddress.IPv4Interface, ...]
    host_mac: str = ""  # MAC of the host end


class ContainerAddresses(NamedTuple):
    mac: str | None  # None if the container has no ethwe
    cidrs: list[ipaddress.IPv4Interface]


def veth_name(ident: str, prefix: str = VETH_PREFIX) -> str:
    """`<prefix><7 chars>`: a Docker id's head, a pid, else a hash of the ident."""
    room = IFNAMSIZ - len(prefix)
    pid = ident[len("pid:") :] if ident.startswith("pid:") else ""
    if pid.isdigit() and len(pid) <= room:
        return prefix + pid
    if _HEX_ID.fullmatch(ident):
        return prefix + ident[:room]
    return prefix + hashlib.sha1(ident.encode()).hexdigest()[:room]


def format_ps_line(ident: str, mac: str | None, cidrs: Cidrs) -> str:
    """One `weave ps` line: `<id> <mac> <cidr> <cidr>...`. Docker ids are cut to 12
    characters as Weave does; `netns:`/`pid:` idents stay whole, so they stay distinct."""
    shown = ident[:12] if _DOCKER_ID.fullmatch(ident) else ident
    return " ".join([shown, mac or "", *(str(c) for c in cidrs)])


_DOCKER_ID = re.compile(r"[0-9a-f]{64}")


# --- attach --------------------------------------------------------------------------------


def _plug_port(host: Any, index: int, bridge_index: int, hairpin: bool = True) -> None:
    """Enslave a host-side veth to the bridge, hairpin on (unless told not), up."""
    host.link("set", index=index, master=bridge_index)
    host.brport("set", index=index, mode=int(hairpin))  # IFLA_BRPORT_MODE: hairpin
    host.link("set", index=index, state="up")


def _delete_if_present(ipr: Any, name: str) -> None:
    index = link_index(ipr, name)
    if index is not None:
        with ignoring(*LINK_GONE):
            ipr.link("del", index=index)


def _move_into(host: Any, index: int, netns_path: str) -> None:
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        host.link("set", index=index, net_ns_fd=fd)
    finally:
        os.close(fd)


class _Port(msgspec.Struct, frozen=True):
    """How the container's interface is made: its name, the bridge, MTU, hairpin, MAC."""

    ifname: str
    bridge: str
    mtu: int | None
    hairpin: bool
    mac: str | None


def _create_veth(host: Any, cont: Any, ref: ContainerRef, bridge_index: int, port: _Port) -> None:
    host_name = veth_name(ref.ident)
    peer_name = veth_name(ref.ident, VETH_PEER_PREFIX)
    for stale in (host_name, peer_name):
        _delete_if_present(host, stale)
    # GSO capped so a TSO superframe fits one fast sleeve send (dataplane/offload.py)
    peer: dict[str, Any] = {"ifname": peer_name, "mtu": port.mtu, "gso_max_size": GSO_MAX_SIZE}
    if port.mac is not None:  # re-created: the same MAC keeps the neighbours' ARP caches right
        peer["address"] = port.mac
    host.link(
        "add", ifname=host_name, kind="veth", mtu=port.mtu, gso_max_size=GSO_MAX_SIZE, peer=peer
    )
    try:
        _plug_port(host, _must_index(host, host_name), bridge_index, port.hairpin)
        _move_into(host, _must_index(host, peer_name), ref.netns_path)
        cont.link("set", index=_must_index(cont, peer_name), ifname=port.ifname)
    except BaseException:
        _delete_if_present(host, host_name)
        raise


def _must_index(ipr: Any, name: str) -> int:
    index = link_index(ipr, name)
    if index is None:
        raise DataplaneError(f"link {name} vanished", errno.ENODEV)
    return index


def _host_end(host: Any, cont: Any, ref: ContainerRef, index: int) -> int | None:
    """The host end of an existing ethwe: by our name, else by its veth peer index."""
    by_name = link_index(host, veth_name(ref.ident))
    if by_name is not None:
        return by_name
    peer = link_info(cont, index).get("IFLA_LINK")
    msg = find_link(host, int(peer)) if peer else None
    if msg is not None and link_kind(msg) == "veth" and msg.get("IFLA_LINK") == index:
        return int(peer)
    return None


def _ensure_ethwe(host: Any, cont: Any, ref: ContainerRef, port: _Port) -> int:
    """ifindex of ethwe (port.ifname) in the container, creating the veth pair if needed."""
    bridge_index = require_bridge(host, port.bridge)
    index = link_index(cont, port.ifname)
    if index is None:
        want_mtu = port.mtu or int(link_info(host, bridge_index).get("IFLA_MTU"))
        _create_veth(host, cont, ref, bridge_index, msgspec.structs.replace(port, mtu=want_mtu))
        index = _must_index(cont, port.ifname)
    else:
        host_index = _host_end(host, cont, ref, index)
        if host_index is not None:
            _plug_port(host, host_index, bridge_index, port.hairpin)
    cont.link("set", index=index, state="up")
    return index


def _add_addresses(cont: Any, index: int, cidrs: Cidrs, multicast_route: bool) -> None:
    have = set(ipv4_addresses(cont, index))
    for cidr in cidrs:
        if (str(cidr.ip), cidr.network.prefixlen) not in have:
            with ignoring(errno.EEXIST):
                cont.addr(
                    "add", index=index, address=str(cidr.ip), prefixlen=cidr.network.prefixlen
                )
    if multicast_route:
        dst, dst_len = str(MULTICAST_NET.network_address), MULTICAST_NET.prefixlen
        with ignoring(errno.EEXIST):
            cont.route(
                "add", dst=dst, dst_len=dst_len, oif=index, scope=RT_SCOPE_LINK, proto=RTPROT_BOOT
            )


def attach(
    container: ContainerRef,
    cidrs: Cidrs,
    bridge: str = DEFAULT_BRIDGE,
    multicast_route: bool = True,
    mtu: int | None = None,
    *,
    mac: str | None = None,
    netns: str | None = None,
    ifname: str = CONTAINER_IFNAME,
    hairpin: bool = True,
) -> AttachResult:
    """Connect `container` to `bridge` (in host namespace `netns`) with `cidrs`. Idempotent.

    The container's interface is `ifname` (ethwe unless told); the host end is a hairpin
    port unless `hairpin` is false. A new interface gets `mac` if given; an existing one
    keeps its own."""
    ensure_not_host(container, netns)
    port = _Port(ifname, bridge, mtu, hairpin, mac)
    with held_netns(container.netns_path) as held:  # the container may end meanwhile
        with (
            iproute(netns) as host,
            iproute(held) as cont,
            kernel_errors(f"attach {container.ident}"),
        ):
            index = _ensure_ethwe(host, cont, container, port)
            _add_addresses(cont, index, cidrs, multicast_route)
            mac = str(link_info(cont, index).get("IFLA_ADDRESS"))
            host_end = _host_end(host, cont, container, index)
            host_link = None if host_end is None else link_info(host, host_end)
        send_gratuitous_arps(held, ifname, mac, cidrs)
    host_name = "" if host_link is None else str(host_link.get("IFLA_IFNAME"))
    host_mac = "" if host_link is None else str(host_link.get("IFLA_ADDRESS"))
    return AttachResult(host_name, mac, tuple(cidrs), host_mac)


# --- gratuitous ARP -------------------------------------------------------------------------


def arp_announcement(mac: str, ip: ipaddress.IPv4Address) -> bytes:
    """A broadcast gratuitous ARP request: sender and target IP both `ip`."""
    hw, addr = bytes.fromhex(mac.replace(":", "")), ip.packed
    eth = b"\xff" * 6 + hw + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + hw + addr + b"\x00" * 6 + addr
    return eth + arp


def send_gratuitous_arps(netns_path: str, ifname: str, mac: str, cidrs: Cidrs) -> None:
    """Send one gratuitous ARP per address out of `ifname` inside namespace `netns_path`."""
    frames = [arp_announcement(mac, c.ip) for c in cidrs]

    def send() -> None:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
            sock.bind((ifname, 0))
            for frame in frames:
                sock.send(frame)

    with kernel_errors(f"gratuitous ARP on {ifname}"):
        run_in_netns(netns_path, send)


# --- detach / ps ----------------------------------------------------------------------------


def _current(cont: Any, index: int) -> list[ipaddress.IPv4Interface]:
    return [ipaddress.IPv4Interface(f"{a}/{p}") for a, p in ipv4_addresses(cont, index)]


def detach(
    container: ContainerRef, cidrs: Cidrs | None = None, ifname: str = CONTAINER_IFNAME
) -> list[ipaddress.IPv4Interface]:
    """Remove `cidrs` (all if None; matched by IP) from ethwe (or `ifname`); delete the
    veth once empty.

    Returns the addresses actually removed.
    """
    with iproute(container.netns_path) as cont, kernel_errors(f"detach {container.ident}"):
        index = link_index(cont, ifname)
        if index is None:
            return []
        have = _current(cont, index)
        wanted = None if cidrs is None else {c.ip for c in cidrs}
        removed = [h for h in have if wanted is None or h.ip in wanted]
        for cidr in removed:
            with ignoring(errno.EADDRNOTAVAIL):
                cont.addr(
                    "del", index=index, address=str(cidr.ip), prefixlen=cidr.network.prefixlen
                )
        if len(removed) == len(have):
            with ignoring(*LINK_GONE):
                cont.link("del", index=index)
        return removed


def container_addresses(container: ContainerRef) -> ContainerAddresses:
    """MAC and IPv4 addresses of the container's ethwe, for `weave ps`."""
    with iproute(container.netns_path) as cont, kernel_errors(f"inspect {container.ident}"):
        index = link_index(cont, CONTAINER_IFNAME)
        if index is None:
            return ContainerAddresses(None, [])
        mac = str(link_info(cont, index).get("IFLA_ADDRESS"))
        return ContainerAddresses(mac, _current(cont, index))


def _has_multicast_route(cont: Any, index: int) -> bool:
    dst, dst_len = str(MULTICAST_NET.network_address), MULTICAST_NET.prefixlen
    return any(
        r.get("RTA_DST") == dst and r["dst_len"] == dst_len and r.get("RTA_OIF") == index
        for r in cont.get_routes(family=socket.AF_INET)
    )


def link_state(
    container: ContainerRef,
    bridge: str = DEFAULT_BRIDGE,
    netns: str | None = None,
    ifname: str = CONTAINER_IFNAME,
) -> LinkState | None:
    """What the reconciler (and CNI CHECK) needs to know of the container's ethwe (or
    `ifname`); None if it has none."""
    with (
        iproute(netns) as host,
        iproute(container.netns_path) as cont,
        kernel_errors(f"inspect {container.ident}"),
    ):
        index = link_index(cont, ifname)
        if index is None:
            return None
        mac = str(link_info(cont, index).get("IFLA_ADDRESS"))
        cidrs = frozenset(_current(cont, index))
        host_end = _host_end(host, cont, container, index)
        bridge_index = link_index(host, bridge)
        master = None if host_end is None else link_info(host, host_end).get("IFLA_MASTER")
        on_bridge = bridge_index is not None and master == bridge_index
        return LinkState(mac, cidrs, _has_multicast_route(cont, index), on_bridge)


def reattach_ports(bridge: str = DEFAULT_BRIDGE, netns: str | None = None) -> list[str]:
    """Put container veths (weave attach's and the Docker plugin's) that lost their bridge
    (it was deleted and re-created) back on it; returns their names."""
    plugged = []
    with iproute(netns) as host, kernel_errors(f"reattach ports to {bridge}"):
        bridge_index = require_bridge(host, bridge)
        for link in host.get_links():
            name = link.get_attr("IFLA_IFNAME") or ""
            if name.startswith(PORT_PREFIXES) and not link.get_attr("IFLA_MASTER"):
                _plug_port(host, link["index"], bridge_index)
                plugged.append(name)
    return plugged
