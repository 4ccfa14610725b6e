"""fastdp, our kernel fast datapath: one forwarder per connection that proves a kernel
VXLAN path to the peer with heartbeats, sans-IO.

The frames themselves never cross userspace: the Linux bridge hands them to a kernel
VXLAN device (UDP 6784) whose fdb the core plans (:mod:`weavenet.core.overlay.vxlan_plan`).
This module only decides whether the path works, so that the overlay switch
(:mod:`weavenet.core.overlay.switch`) knows whether to plan the peer's MACs onto it.

Heartbeats (weave-wire §8.2 frame layout): an inner frame of ``14 + mtu`` bytes with both
MACs and the EtherType zero, then the connection UID (8 B BE), the frame length (2 B BE),
zero padding; it travels in a VXLAN packet to the peer's UDP 6784 with DF set, so it is
also the MTU probe. The peer acknowledges every heartbeat over the TCP control connection
(tag 7, our index, sub-tag 0 ``FastDatapathHeartbeatAck``, empty).

Not Go's fastdp, so it is advertised under a name of our own (:data:`FASTDP_OVERLAY`): Go
puts ``(dst << 12) | src`` ShortIDs in the VNI and expects per-flow OVS handling of it; a
Linux VXLAN device has one VNI for both directions and cannot carry the origin peer.
A Go peer, which advertises ``fastdp sleeve``, therefore shares only ``sleeve`` with us.

Timing and health (acks over the control connection) are shared with the fast sleeve in
:mod:`weavenet.core.overlay.probe`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from weavenet.core.mesh.addresses import host_of
from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.probe import (
    ACK_TIMEOUT,
    FAST_HEARTBEAT,
    HEARTBEAT_ACK,
    OVERLAY_CONTROL_TAG,
    SLOW_HEARTBEAT,
    TRANSITIONS,
    Event,
    Heartbeat,
    ProbedForwarder,
    State,
    forget_stopped,
    install,
    take_all_heartbeats,
)
from weavenet.core.overlay.ready import ReadyList

FASTDP = "fastdp"  # the name shown in status, report and metrics
FASTDP_OVERLAY = "weavenet-fastdp"  # the name advertised in the Overlays feature
DEFAULT_MTU = 1376
VXLAN_PORT = 6784
DATA_VNI = 0x574E01  # the bridge's VXLAN device ("WN" 1)
HEARTBEAT_VNI = 0x574E02  # a second device, off the bridge, where heartbeats land
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14

_HEADER = 14 + 8 + 2


class FastdpError(ValueError):
    pass


def vxlan_header(vni: int) -> bytes:
    """RFC 7348: flags with the I bit, 24 reserved bits, the VNI, 8 reserved bits."""
    return b"\x08\x00\x00\x00" + vni.to_bytes(3, "big") + b"\x00"


def encode_heartbeat(conn_uid: int, mtu: int) -> bytes:
    """The inner frame of a heartbeat: ``14 + mtu`` bytes."""
    size = 14 + mtu
    if size < _HEADER or size > 0xFFFF:
        raise FastdpError(f"heartbeat for MTU {mtu} cannot be built")
    head = bytes(14) + (conn_uid & (2**64 - 1)).to_bytes(8, "big") + size.to_bytes(2, "big")
    return head + bytes(size - _HEADER)


def decode_heartbeat(frame: bytes) -> int:
    """The connection UID of a valid heartbeat frame; FastdpError otherwise."""
    if len(frame) < _HEADER:
        raise FastdpError(f"heartbeat too short: {len(frame)} bytes")
    if any(frame[:14]):
        raise FastdpError("not a heartbeat: MACs or EtherType set")
    size = int.from_bytes(frame[22:24], "big")
    if size != len(frame):
        raise FastdpError(f"heartbeat says {size} bytes, {len(frame)} arrived")
    return int.from_bytes(frame[14:22], "big")


class FastdpForwarder(ProbedForwarder):
    """Heartbeats through the VXLAN tunnel (see :mod:`weavenet.core.overlay.probe`)."""

    port: int = VXLAN_PORT
    mtu: int = DEFAULT_MTU

    acked_why = "heartbeats through the VXLAN tunnel are acknowledged"

    def heartbeat(self) -> bytes:
        return vxlan_header(HEARTBEAT_VNI) + encode_heartbeat(self.conn_uid, self.mtu)

    def attrs(self) -> dict[str, Any]:
        return {"name": FASTDP, "mtu": self.mtu}


class FastdpOverlay(msgspec.Struct):
    """Registers fastdp in the switch; keeps the forwarders by peer and by connection UID."""

    mtu: int = DEFAULT_MTU
    port: int = VXLAN_PORT
    name: str = FASTDP_OVERLAY
    connections: dict[int, FastdpForwarder] = msgspec.field(default_factory=dict)
    ready: ReadyList[ProbedForwarder] = msgspec.field(default_factory=ReadyList)  # heartbeats due
    received_heartbeats: int = 0
    bad_heartbeats: int = 0
    kernel_repairs: int = 0  # rounds that found the kernel drifted from an unchanged plan

    def record_repair(self) -> None:
        self.kernel_repairs += 1

    def prepare_forwarder(self, params: OverlayParams, index: int | None) -> FastdpForwarder | None:
        if params.session_key is not None or index is None:
            return None  # no kernel ESP here: encrypted connections stay on the sleeve
        fwd = FastdpForwarder(
            params.remote_name,
            params.conn_uid,
            host_of(params.remote_addr),
            index,
            port=self.port,
            mtu=self.mtu,
            ready=self.ready,
        )
        install(self.connections, fwd)
        return fwd

    def heartbeat_frame(self, frame: bytes, now: float) -> int | None:
        """A frame caught on the heartbeat device; returns the peer it proved, if any."""
        try:
            uid = decode_heartbeat(frame)
        except FastdpError:
            self.bad_heartbeats += 1
            return None
        for fwd in self.connections.values():
            if fwd.conn_uid == uid and fwd.state is not State.STOPPED:
                self.received_heartbeats += 1
                fwd.heartbeat_received(now)
                return fwd.remote
        self.bad_heartbeats += 1
        return None

    def take_heartbeats(self) -> list[Heartbeat]:
        return take_all_heartbeats(self.ready)

    def forget(self, remote: int) -> None:
        forget_stopped(self.connections, remote)

    def diagnostics(self) -> dict[str, Any]:
        return {FASTDP: self.status()}

    def status(self) -> dict[str, Any]:
        return {
            "Name": FASTDP_OVERLAY,
            "MTU": self.mtu,
            "VxlanPort": self.port,
            "HeartbeatsReceived": self.received_heartbeats,
            "HeartbeatsRejected": self.bad_heartbeats,
            "KernelRepairs": self.kernel_repairs,
        }


__all__ = [
    "ACK_TIMEOUT",
    "FAST_HEARTBEAT",
    "HEARTBEAT_ACK",
    "OVERLAY_CONTROL_TAG",
    "SLOW_HEARTBEAT",
    "TRANSITIONS",
    "Event",
    "FastdpForwarder",
    "FastdpOverlay",
    "Heartbeat",
    "State",
]
