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

Timing, deliberately faster than Go (which says 10 s / 60 s): heartbeats every 0.5 s until
the first ack, then every :data:`SLOW_HEARTBEAT`; no ack for :data:`ACK_TIMEOUT` makes the
forwarder unhealthy (traffic moves to the next overlay), the next ack makes it healthy
again. Health is judged on acks because they prove *our* sending direction, the one our
choice of overlay is about; the peer judges its own direction the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from weavenet.core.mesh.addresses import host_of
from weavenet.core.mesh.overlay import OverlayParams

FASTDP = "fastdp"  # the name shown in status, report and metrics
FASTDP_OVERLAY = "weavenet-fastdp"  # the name advertised in the Overlays feature
DEFAULT_MTU = 1376
VXLAN_PORT = 6784
DATA_VNI = 0x574E01  # the bridge's VXLAN device ("WN" 1)
HEARTBEAT_VNI = 0x574E02  # a second device, off the bridge, where heartbeats land
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14

FAST_HEARTBEAT = 0.5
SLOW_HEARTBEAT = 4.0
ACK_TIMEOUT = 16.0
HEARTBEAT_ACK = 0  # fastdp's control sub-tag (weave-wire §6.2)
OVERLAY_CONTROL_TAG = 7
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


class State(Enum):
    IDLE = "idle"  # prepared, not yet confirmed by the mesh
    PROBING = "probing"  # heartbeating fast, no ack yet
    HEALTHY = "healthy"  # acks arrive: the peer receives our VXLAN packets
    UNHEALTHY = "unhealthy"  # acks stopped: on hold, still heartbeating
    STOPPED = "stopped"


class Event(Enum):
    CONFIRM = "confirm"
    ACK = "ack"
    SILENCE = "silence"  # no ack for ACK_TIMEOUT
    STOP = "stop"


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.IDLE, Event.CONFIRM): State.PROBING,
    (State.IDLE, Event.STOP): State.STOPPED,
    (State.PROBING, Event.ACK): State.HEALTHY,
    (State.PROBING, Event.SILENCE): State.UNHEALTHY,
    (State.PROBING, Event.STOP): State.STOPPED,
    (State.HEALTHY, Event.ACK): State.HEALTHY,
    (State.HEALTHY, Event.SILENCE): State.UNHEALTHY,
    (State.HEALTHY, Event.STOP): State.STOPPED,
    (State.UNHEALTHY, Event.ACK): State.HEALTHY,
    (State.UNHEALTHY, Event.SILENCE): State.UNHEALTHY,
    (State.UNHEALTHY, Event.STOP): State.STOPPED,
}


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Send ``payload`` (VXLAN header + frame) to ``addr`` over UDP with DF set."""

    addr: tuple[str, int]
    payload: bytes
    peer: int


@dataclass
class FastdpForwarder:
    remote: int
    conn_uid: int
    remote_ip: str
    control_index: int
    mtu: int = DEFAULT_MTU
    port: int = VXLAN_PORT
    state: State = State.IDLE
    established: bool = False  # acked at least once (Go's "established" never reverts)
    error: str | None = None  # fastdp never fails a connection: it goes on hold instead
    why: str = "waiting for the mesh to confirm the connection"
    _next_heartbeat: float = float("inf")
    _ack_deadline: float = float("inf")
    _control: list[tuple[int, bytes]] = field(default_factory=list)
    _heartbeats: list[Heartbeat] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.state is State.HEALTHY

    def _fire(self, event: Event, why: str) -> None:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is not None:
            self.state, self.why = nxt, why

    # ---- the mesh side ---------------------------------------------------------------
    def confirm(self, now: float) -> None:
        self._fire(Event.CONFIRM, "heartbeats sent, waiting for the first ack")
        self._next_heartbeat = now
        self._ack_deadline = now + ACK_TIMEOUT
        self.tick(now)

    def control_message(self, tag: int, payload: bytes, now: float) -> None:
        if tag != OVERLAY_CONTROL_TAG or len(payload) < 2 or payload[0] != self.control_index:
            return
        if payload[1] == HEARTBEAT_ACK and self.state is not State.STOPPED:
            if not self.established:
                self._next_heartbeat = min(self._next_heartbeat, now + SLOW_HEARTBEAT)
            self.established = True
            self._ack_deadline = now + ACK_TIMEOUT
            self._fire(Event.ACK, "heartbeats through the VXLAN tunnel are acknowledged")

    def take_control_messages(self) -> list[tuple[int, bytes]]:
        out, self._control = self._control, []
        return out

    def take_heartbeats(self) -> list[Heartbeat]:
        out, self._heartbeats = self._heartbeats, []
        return out

    def tick(self, now: float) -> float:
        if self.state in (State.IDLE, State.STOPPED):
            return float("inf")
        if now >= self._ack_deadline:
            self._ack_deadline = now + ACK_TIMEOUT
            gap = f"no heartbeat ack for {ACK_TIMEOUT:g}s (UDP {self.port} blocked?)"
            self._fire(Event.SILENCE, gap)
        if now >= self._next_heartbeat:
            payload = vxlan_header(HEARTBEAT_VNI) + encode_heartbeat(self.conn_uid, self.mtu)
            self._heartbeats.append(Heartbeat((self.remote_ip, self.port), payload, self.remote))
            interval = SLOW_HEARTBEAT if self.established else FAST_HEARTBEAT
            self._next_heartbeat = now + interval
        return min(self._next_heartbeat, self._ack_deadline)

    def heartbeat_received(self, now: float) -> None:
        """The peer's heartbeat for this connection arrived: acknowledge it."""
        if self.state is not State.STOPPED:
            self._control.append((OVERLAY_CONTROL_TAG, bytes((self.control_index, HEARTBEAT_ACK))))

    def attrs(self) -> dict[str, Any]:
        return {"name": FASTDP, "mtu": self.mtu}

    def stop(self) -> None:
        self._fire(Event.STOP, "connection closed")


@dataclass
class FastdpOverlay:
    """Registers fastdp in the switch; keeps the forwarders by peer and by connection UID."""

    mtu: int = DEFAULT_MTU
    port: int = VXLAN_PORT
    name: str = FASTDP_OVERLAY
    connections: dict[int, FastdpForwarder] = field(default_factory=dict)
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
            mtu=self.mtu,
            port=self.port,
        )
        old = self.connections.get(params.remote_name)
        if old is not None:
            old.stop()
        self.connections[params.remote_name] = fwd
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
        out: list[Heartbeat] = []
        for fwd in self.connections.values():
            out.extend(fwd.take_heartbeats())
        return out

    def forget(self, remote: int) -> None:
        fwd = self.connections.get(remote)
        if fwd is not None and fwd.state is State.STOPPED:
            del self.connections[remote]

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
