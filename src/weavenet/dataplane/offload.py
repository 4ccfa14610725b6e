"""Offloads for the fast sleeve: the TAP as a TSO-capable NIC, and GSO sizes that keep a
superframe within one ``UDP_SEGMENT`` send.

``TUNSETOFFLOAD`` tells the kernel the TAP's reader takes checksum offload and TSO (with
a ``virtio_net_hdr`` in front of every frame, ``IFF_VNET_HDR``), so the bridge hands it
superframes instead of segmenting them. A send carries at most 65507 bytes of datagrams
(the IPv4 length field), i.e. ~64,000 bytes of superframe on a 1500-byte underlay once
the 16-byte datagram headers are counted; :data:`GSO_MAX_SIZE` on the container
interfaces and the bridge keeps TCP's superframes (frame, vnet header, peers, AEAD tag)
under that, with room for a somewhat smaller underlay MTU. Larger frames still work (two
sends), they just cost more.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any

from weavenet.dataplane.bridge import open_tap_fd
from weavenet.dataplane.netlink import iproute, kernel_errors, link_index

TUNSETOFFLOAD = 0x400454D0
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 = 0x01, 0x02, 0x04
TSO = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6
GSO_MAX_SIZE = 60000


def open_tap(name: str, offload: bool, netns: str | None = None) -> int:
    """Open the TAP `name`: with vnet headers and TSO (``offload``), or plain frames with
    every offload off (a TAP the fast sleeve used before keeps its features)."""
    fd = open_tap_fd(name, netns, vnet_hdr=offload)
    try:
        fcntl.ioctl(fd, TUNSETOFFLOAD, TSO if offload else 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def limit_gso(ipr: Any, index: int) -> None:
    """Cap the link's GSO superframes at :data:`GSO_MAX_SIZE` (an open IPRoute)."""
    ipr.link("set", index=index, gso_max_size=GSO_MAX_SIZE)


def limit_bridge_gso(bridge: str, netns: str | None = None) -> None:
    with iproute(netns) as ipr, kernel_errors(f"gso_max_size on {bridge}"):
        index = link_index(ipr, bridge)
        if index is not None:
            limit_gso(ipr, index)
