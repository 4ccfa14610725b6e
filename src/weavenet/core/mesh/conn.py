"""One mesh TCP connection, sans-IO: handshake, framing, deadlines and pending output."""

from __future__ import annotations

import msgspec

from weavenet.core.errors import LocalProtocolError
from weavenet.core.mesh.crypto import MessageCodec
from weavenet.core.mesh.features import RemoteFeatures
from weavenet.core.mesh.gossip import GossipData, PendingGossip
from weavenet.core.mesh.handshake import Handshake
from weavenet.core.mesh.overlay import OverlayConnection
from weavenet.core.peername import format_peer_name

HEADER_TIMEOUT = 10.0  # for the 7-byte protocol header exchange
READ_TIMEOUT = 60.0  # re-armed before every message, 2 x the heartbeat interval
HEARTBEAT_INTERVAL = 30.0


class MeshConn(msgspec.Struct):
    id: int
    outbound: bool
    local_addr: str
    remote_addr: str
    target: str | None  # the target address we dialled, for the connection maker
    conn_id: int  # our random half of the connection UID
    handshake: Handshake
    read_deadline: float
    codec: MessageCodec | None = None
    remote: RemoteFeatures | None = None
    remote_nickname: str = ""
    uid: int = 0  # localConnID XOR remoteConnID: the same number on both ends
    untrusted: bool = True
    holds_ref: bool = False
    registered: bool = False
    established: bool = False
    overlay: OverlayConnection | None = None
    overlay_wakeup: float = float("inf")
    next_heartbeat: float = float("inf")
    writable: bool = True
    gossip_ready_at: float = 0.0  # pending gossip waits until then (batching)
    pending: PendingGossip = msgspec.field(default_factory=PendingGossip)
    out: bytearray = msgspec.field(default_factory=bytearray)
    # ids of connections with output or pending gossip, shared with the router, so that
    # flushing costs nothing for the many idle connections
    touched: set[int] = msgspec.field(default_factory=set)
    _stage: str = "header"

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """Feed bytes; return complete message bodies. Raises RemoteProtocolError."""
        self.touched.add(self.id)
        if self.codec is not None:
            bodies = self.codec.feed(data)
            if bodies:
                self.read_deadline = now + READ_TIMEOUT
            return bodies
        try:
            self.handshake.receive_data(data)
        finally:
            # what we owe the peer goes out even if its part was bad: Go writes its side
            # of every step concurrently, so a password mismatch is noticed on both ends
            self.out += self.handshake.data_to_send()
        if self.handshake.stage != self._stage:
            self._stage = self.handshake.stage
            self.read_deadline = now + READ_TIMEOUT
        return []

    @property
    def handshake_done(self) -> bool:
        return self.codec is None and self.handshake.done

    def send(self, body: bytes) -> None:
        if self.codec is None:
            raise LocalProtocolError("send before the handshake completed")
        self.out += self.codec.encode(body)
        self.touched.add(self.id)

    def add_gossip(self, channel: str, data: GossipData) -> None:
        self.pending.add_gossip(channel, data)
        self.touched.add(self.id)

    def add_broadcast(self, channel: str, src: int, data: GossipData) -> None:
        self.pending.add_broadcast(channel, src, data)
        self.touched.add(self.id)

    def take_output(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data

    @property
    def remote_name(self) -> int:
        return self.remote.name if self.remote is not None else 0

    def describe(self) -> str:
        """Log prefix in mesh's style: ``->[addr|name(nick)]``."""
        if self.remote is None:
            return f"->[{self.remote_addr}]"
        return f"->[{self.remote_addr}|{self.peer_label()}]"

    def peer_label(self) -> str:
        return f"{format_peer_name(self.remote_name)}({self.remote_nickname})"
