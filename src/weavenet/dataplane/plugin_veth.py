"""The kernel side of the Docker network plugin (`weavemesh`).

CreateEndpoint makes a veth pair: the host end `vethwl<endpoint id>` is a hairpin port of
the weave bridge, the other end `vethwg<endpoint id>` stays in the host namespace for
Docker to move into the container (Join names it, Docker renames it `ethwe0`). Docker
puts the address IPAM gave on it; `readdress` swaps it for the container's own address
when Docker handed out a new one on a restart (Docker asks IPAM without saying for whom).
"""

from __future__ import annotations

import errno
import ipaddress
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from weavenet.dataplane.attach import IFNAMSIZ, send_gratuitous_arps
from weavenet.dataplane.bridge import DEFAULT_BRIDGE, delete_link
from weavenet.dataplane.netlink import (
    LINK_GONE,
    DataplaneError,
    held_netns,
    ignoring,
    iproute,
    ipv4_addresses,
    kernel_errors,
    link_index,
    link_kind,
)

HOST_PREFIX = "vethwl"
PEER_PREFIX = "vethwg"
Cidr = ipaddress.IPv4Interface


def endpoint_veths(endpoint_id: str) -> tuple[str, str]:
    """(host end, container end) names, as Weave's plugin names them."""
    room = IFNAMSIZ - len(HOST_PREFIX)
    return HOST_PREFIX + endpoint_id[:room], PEER_PREFIX + endpoint_id[:room]


def create_endpoint_veth(
    endpoint_id: str, bridge: str = DEFAULT_BRIDGE, netns: str | None = None
) -> str:
    """The veth pair of an endpoint (re-made if left over); returns the container end's MAC.

    On Docker's request path (CreateEndpoint), so in few netlink round trips: one look at
    the bridge, one RTM_NEWLINK making the pair already enslaved and up, the hairpin flag,
    one look at the container end (its MAC, and the host end's index as its peer link)."""
    host_name, peer_name = endpoint_veths(endpoint_id)
    with iproute(netns) as host, kernel_errors(f"create endpoint {endpoint_id[:12]}"):
        bridge_index, mtu = _bridge_index_and_mtu(host, bridge)
        try:
            _add_enslaved_veth(host, host_name, peer_name, bridge_index, mtu)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
            _delete_links(host, host_name, peer_name)  # left over from an earlier run
            _add_enslaved_veth(host, host_name, peer_name, bridge_index, mtu)
        peer = host.link("get", ifname=peer_name)[0]
        host.brport("set", index=int(peer.get("IFLA_LINK")), mode=1)  # hairpin
        return str(peer.get("IFLA_ADDRESS"))


def _bridge_index_and_mtu(ipr: Any, bridge: str) -> tuple[int, int]:
    try:
        link = ipr.link("get", ifname=bridge)[0]
    except NetlinkError as exc:
        if exc.code not in LINK_GONE:
            raise
        raise DataplaneError(
            f"bridge {bridge} not found (is weave launched?)", errno.ENODEV
        ) from None
    if link_kind(link) != "bridge":
        raise DataplaneError(f"{bridge} exists but is not a bridge", errno.EEXIST)
    return int(link["index"]), int(link.get("IFLA_MTU"))


def _add_enslaved_veth(ipr: Any, host_name: str, peer_name: str, master: int, mtu: int) -> None:
    ipr.link("add", ifname=host_name, kind="veth", mtu=mtu, master=master, state="up",
             peer={"ifname": peer_name, "mtu": mtu})  # fmt: skip


def _delete_links(ipr: Any, *names: str) -> None:
    for name in names:
        index = link_index(ipr, name)
        if index is not None:
            with ignoring(*LINK_GONE):
                ipr.link("del", index=index)


def delete_endpoint_veth(endpoint_id: str, netns: str | None = None) -> bool:
    """Delete the endpoint's veth pair; False if it was already gone."""
    host_name, _ = endpoint_veths(endpoint_id)
    return delete_link(host_name, netns)  # the peer end goes with it


def readdress(netns_path: str, old: Cidr, new: Cidr) -> str | None:
    """In the container at `netns_path`, put `new` on the interface holding `old` and take
    `old` off; returns that interface's name (None if no interface holds `old`)."""
    with held_netns(netns_path) as held:  # the container may end meanwhile
        return _readdress_held(held, old, new)


def _readdress_held(netns_path: str, old: Cidr, new: Cidr) -> str | None:
    with iproute(netns_path) as cont, kernel_errors(f"readdress {old} -> {new}"):
        for link in cont.get_links():
            index = int(link["index"])
            if (str(old.ip), old.network.prefixlen) not in ipv4_addresses(cont, index):
                continue
            # old first: deleting a primary address takes its secondaries with it
            with ignoring(errno.EADDRNOTAVAIL):
                cont.addr("del", index=index, address=str(old.ip), prefixlen=old.network.prefixlen)
            with ignoring(errno.EEXIST):
                cont.addr("add", index=index, address=str(new.ip), prefixlen=new.network.prefixlen)
            ifname, mac = str(link.get_attr("IFLA_IFNAME")), str(link.get_attr("IFLA_ADDRESS"))
            break
        else:
            return None
    send_gratuitous_arps(netns_path, ifname, mac, [new])
    return ifname
