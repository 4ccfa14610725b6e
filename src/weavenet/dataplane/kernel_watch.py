"""fastdp's kernel watcher: link and neighbour notifications about our VXLAN devices.

A NETLINK_ROUTE socket joined to the RTMGRP_LINK and RTMGRP_NEIGH groups, non-blocking:
the fastdp shell adds its fd to the event loop (``loop.add_reader``) and calls
:meth:`KernelWatch.read` when it is readable. Not a worker thread: notifications are
rare once the mesh has converged, a read is a few non-blocking ``recv`` calls and header
peeks on the loop (µs), and a thread would need a blocking pyroute2 socket (which runs
an event loop of its own) and a hand-off to our loop for every event.

Most notifications are not about us (every MAC the bridge or the VXLAN device learns is
an RTM_NEWNEIGH): :func:`parse` looks at the fixed netlink headers with ``struct`` and
decodes (with pyroute2's message classes) only RTM_NEWLINK/RTM_DELLINK of our devices'
indexes, the bridge's RTM_NEWLINK about its ports (few: a port added, its state or
isolation changed; the TAP, re-created, has a new index) and RTM_DELNEIGH (AF_BRIDGE) on
the data device. What they mean for the plan is decided in
:mod:`weavenet.core.overlay.vxlan_watch`.
"""

from __future__ import annotations

import errno
import socket
import struct

from weavenet.core.overlay.vxlan_plan import VxlanConfig
from weavenet.core.overlay.vxlan_watch import (
    DeviceIndexes,
    EventsLost,
    FdbGone,
    KernelEvent,
    LinkGone,
    LinkSeen,
    PortChanged,
)
from weavenet.dataplane.netlink import DataplaneError, describe, run_in_netns
from weavenet.dataplane.vxlan import device_seen
from weavenet.lean_import import lean_package

lean_package("pyroute2")  # see lean_import
from pyroute2.netlink.exceptions import NetlinkDecodeError  # noqa: E402
from pyroute2.netlink.rtnl import (  # noqa: E402
    RTM_DELLINK,
    RTM_DELNEIGH,
    RTM_NEWLINK,
    RTMGRP_LINK,
    RTMGRP_NEIGH,
)
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # noqa: E402
from pyroute2.netlink.rtnl.ndmsg import ndmsg  # noqa: E402

NETLINK_ROUTE = 0
SO_RCVBUFFORCE = 33  # missing from this CPython's socket module
RECEIVE_BUFFER = 1 << 20  # a flush of a few thousand entries' notifications
READ_BATCH = 64  # datagrams per call: the loop serves others between batches
# What pyroute2's decoders raise on a message they cannot read (fuzzed in the unit tests)
UNDECODABLE = (
    NetlinkDecodeError, ValueError, KeyError, TypeError, AttributeError, IndexError, struct.error
)  # fmt: skip
AF_UNSPEC, AF_BRIDGE = 0, 7
HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
NDMSG = struct.Struct("=BxxxiHBB")  # ndmsg: family, ifindex, state, flags, type


def _link_event(
    kind: int, family: int, frame: bytes, indexes: DeviceIndexes, config: VxlanConfig
) -> KernelEvent:
    msg = ifinfmsg(frame)
    msg.decode()
    index = int(msg["index"])
    if kind == RTM_DELLINK:
        return LinkGone(index)
    name = str(msg.get("IFLA_IFNAME"))
    if family == AF_BRIDGE:  # the bridge's view of one of its ports
        protinfo = msg.get("IFLA_PROTINFO")
        isolated = protinfo.get("IFLA_BRPORT_ISOLATED") if protinfo is not None else None
        return PortChanged(index, name, None if isolated is None else bool(isolated))
    bridge = {indexes.bridge: config.bridge} if indexes.bridge is not None else {}
    return LinkSeen(index, name, device_seen(msg, bridge.get))


def _fdb_event(frame: bytes) -> FdbGone:
    msg = ndmsg(frame)
    msg.decode()
    dst = msg.get("NDA_DST")
    return FdbGone(str(msg.get("NDA_LLADDR") or ""), str(dst) if dst else None)


def _wanted(kind: int, frame: bytes, offset: int, ours: tuple[int | None, ...]) -> int | None:
    """The family of a message worth decoding, from its fixed header; None to skip it."""
    if kind in (RTM_NEWLINK, RTM_DELLINK) and len(frame) >= offset + IFINFO.size:
        family, _, index, _, _ = IFINFO.unpack_from(frame, offset)
        if family == AF_BRIDGE and kind == RTM_NEWLINK:  # any port: the TAP may be new
            return AF_BRIDGE
        return int(family) if index in ours and family in (AF_UNSPEC, AF_BRIDGE) else None
    if kind == RTM_DELNEIGH and len(frame) >= offset + NDMSG.size:
        family, index, _, _, _ = NDMSG.unpack_from(frame, offset)
        return int(family) if family == AF_BRIDGE and index == ours[0] else None
    return None


def parse(data: bytes, indexes: DeviceIndexes, config: VxlanConfig) -> list[KernelEvent]:
    """The events in one datagram of notifications that concern our devices (``indexes``);
    a truncated or malformed message ends the datagram (it cannot be framed past it)."""
    events: list[KernelEvent] = []
    ours = (indexes.data, indexes.heartbeat)
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, _, _, _ = HEADER.unpack_from(data, offset)
        if length < HEADER.size or offset + length > len(data):
            break
        frame = data[offset : offset + length]
        family = _wanted(kind, frame, HEADER.size, ours)
        if family is not None:
            try:
                events.append(
                    _fdb_event(frame)
                    if kind == RTM_DELNEIGH
                    else _link_event(kind, family, frame, indexes, config)
                )
            except UNDECODABLE:
                events.append(EventsLost())  # undecodable, so possibly about us: look
        offset += (length + 3) & ~3
    return events


def _subscribed_socket() -> socket.socket:
    sock = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
        NETLINK_ROUTE,
    )  # fmt: skip
    try:
        try:  # root may exceed net.core.rmem_max: a burst must not overflow it
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((0, RTMGRP_LINK | RTMGRP_NEIGH))
    except OSError:
        sock.close()
        raise
    return sock


class KernelWatch:
    """The subscribed socket; :meth:`read` whenever its fd is readable."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, indexes: DeviceIndexes, config: VxlanConfig) -> list[KernelEvent]:
        """What arrived (up to READ_BATCH datagrams); DataplaneError if the socket broke."""
        events: list[KernelEvent] = []
        for _ in range(READ_BATCH):
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    what = f"kernel notifications: {describe(exc)}"
                    raise DataplaneError(what, exc.errno) from exc
                events.append(EventsLost())  # overflowed; the socket goes on
                continue
            events += parse(data, indexes, config)
        return events

    def close(self) -> None:
        self.sock.close()


def open_watch(netns: str | None = None) -> KernelWatch:
    """A KernelWatch on namespace ``netns`` (None: ours); DataplaneError if impossible."""
    try:
        return KernelWatch(run_in_netns(netns, _subscribed_socket))
    except OSError as exc:
        raise DataplaneError(f"kernel notifications: {describe(exc)}", exc.errno) from exc
