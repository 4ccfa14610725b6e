"""The fast sleeve: our userspace overlay for TSO superframes, between our routers only,
sans-IO (forwarder and overlay; the packet path is :mod:`.fast_sleeve_path`).

Frames come off an ``IFF_VNET_HDR`` TAP as superframes of up to ~64 KB, travel as one
``UDP_SEGMENT`` send of several datagrams (:mod:`.fast_sleeve_codec`) to the peer's UDP
:data:`FAST_SLEEVE_PORT` (mesh port + 2), sealed with AES-GCM when the connection is
encrypted (:mod:`.fast_sleeve_crypto`), and go back into the peer's TAP whole, for its
kernel to segment. Advertised as :data:`FAST_SLEEVE_OVERLAY`, a name Go peers do not
have, so they keep the Weave-compatible sleeve with us.

Health is fastdp's (:mod:`.probe`): heartbeats over this path, acknowledged over the
control connection; without acks the switch falls back to the sleeve, with the next ack
it promotes back. A heartbeat is a superframe of its own, sealed like data and as big as
one datagram, so an ack proves the port, the keys and the datagram size at once.
"""

from __future__ import annotations

from typing import Any

import msgspec

from weavenet.core.mesh.addresses import host_of
from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.fast_sleeve_codec import HEADER
from weavenet.core.overlay.probe import (
    Heartbeat,
    ProbedForwarder,
    State,
    forget_stopped,
    install,
    take_all_heartbeats,
)
from weavenet.core.overlay.ready import ReadyList

FAST_SLEEVE = "fast sleeve"  # the name shown in status, report and metrics
FAST_SLEEVE_OVERLAY = "weavenet-fastsleeve"  # the name advertised in the Overlays feature
FAST_SLEEVE_PORT = 6785
DEFAULT_DATAGRAM = 1472  # an Ethernet underlay: 1500 - IPv4 20 - UDP 8
MIN_DATAGRAM = 512


class FastSleeveForwarder(ProbedForwarder):
    port: int = FAST_SLEEVE_PORT
    encrypted: bool = False
    outbound: bool = False  # we dialled the mesh connection (picks the direction keys)
    session_key: bytes | None = None
    datagram_size: int = DEFAULT_DATAGRAM  # UDP payload per datagram; the shell sets it

    acked_why = "heartbeats over the fast sleeve are acknowledged"

    def heartbeat(self) -> bytes:
        """Connection UID, zero padding: one datagram once sealed and framed."""
        size = max(8, self.datagram_size - HEADER - (16 if self.encrypted else 0))
        return self.conn_uid.to_bytes(8, "big") + bytes(size - 8)

    def set_datagram_size(self, size: int) -> None:
        """The underlay's path MTU changed (the shell asks the kernel)."""
        self.datagram_size = max(MIN_DATAGRAM, min(size, 65507))

    def attrs(self) -> dict[str, Any]:
        return {"name": FAST_SLEEVE, "mtu": self.datagram_size}


class FastSleeveCounters(msgspec.Struct):
    superframes_in: int = 0
    superframes_out: int = 0
    datagrams_in: int = 0
    receives: int = 0  # reads of the socket (UDP GRO coalesces several datagrams)
    datagrams_out: int = 0
    replayed: int = 0  # datagrams of a superframe already accepted, or too old
    forged: int = 0  # superframes that failed authentication
    malformed: int = 0  # not our format, unknown sender, inconsistent chunks
    lost: int = 0  # superframes dropped incomplete
    send_errors: int = 0


class FastSleeveOverlay(msgspec.Struct):
    """Registers the fast sleeve in the switch; keeps one forwarder per peer."""

    port: int = FAST_SLEEVE_PORT
    name: str = FAST_SLEEVE_OVERLAY
    connections: dict[int, FastSleeveForwarder] = msgspec.field(default_factory=dict)
    ready: ReadyList[ProbedForwarder] = msgspec.field(default_factory=ReadyList)  # heartbeats due
    unsized: ReadyList[FastSleeveForwarder] = msgspec.field(default_factory=ReadyList)
    counters: FastSleeveCounters = msgspec.field(default_factory=FastSleeveCounters)
    heartbeats_received: int = 0

    def prepare_forwarder(
        self, params: OverlayParams, index: int | None
    ) -> FastSleeveForwarder | None:
        if index is None:
            return None  # a peer without Overlays is a Go weaver: it has no fast sleeve
        fwd = FastSleeveForwarder(
            params.remote_name,
            params.conn_uid,
            host_of(params.remote_addr),
            index,
            port=self.port,
            encrypted=params.session_key is not None,
            outbound=params.outbound,
            session_key=params.session_key,
            ready=self.ready,
        )
        install(self.connections, fwd)
        self.unsized.add(fwd)
        return fwd

    def take_unsized(self) -> list[FastSleeveForwarder]:
        """Forwarders created since the last call: the shell asks the kernel for the
        route's MTU to size their datagrams (only new ones: not a pass over every peer)."""
        return self.unsized.drain()

    def usable(self, peer: int) -> FastSleeveForwarder | None:
        """The peer's forwarder if it may carry data now (acked lately)."""
        fwd = self.connections.get(peer)
        return fwd if fwd is not None and fwd.state is State.HEALTHY else None

    def heartbeat_received(self, sender: int, conn_uid: int, now: float) -> bool:
        fwd = self.connections.get(sender)
        if fwd is None or fwd.conn_uid != conn_uid or fwd.state is State.STOPPED:
            return False
        self.heartbeats_received += 1
        fwd.heartbeat_received(now)
        return True

    def take_heartbeats(self) -> list[Heartbeat]:
        return take_all_heartbeats(self.ready)

    def forget(self, remote: int) -> None:
        forget_stopped(self.connections, remote)

    def diagnostics(self) -> dict[str, Any]:
        c = self.counters
        return {
            FAST_SLEEVE: {
                "Name": FAST_SLEEVE_OVERLAY,
                "Port": self.port,
                "HeartbeatsReceived": self.heartbeats_received,
                "SuperframesIn": c.superframes_in,
                "SuperframesOut": c.superframes_out,
                "DatagramsIn": c.datagrams_in,
                "Receives": c.receives,
                "DatagramsOut": c.datagrams_out,
                "Replayed": c.replayed,
                "Forged": c.forged,
                "Malformed": c.malformed,
                "Lost": c.lost,
                "SendErrors": c.send_errors,
            }
        }
