"""The router's connection table: every connection by id, the registered ones by peer
name, and which of them have output waiting, so that flushing costs nothing for the many
idle connections."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

from weavenet.core.effects import Effect, Send
from weavenet.core.mesh.conn import MeshConn
from weavenet.core.mesh.protocol import GossipMessage, encode_gossip

# Gossip to one connection goes at most this often; what arrives meanwhile is merged, as
# mesh's per-connection senders merge under load. Keeps busy meshes from drowning in
# many small deltas.
GOSSIP_BATCH = 0.1


class ConnectionTable:
    def __init__(self, ourself: int) -> None:
        self.by_id: dict[int, MeshConn] = {}
        self.by_peer: dict[int, MeshConn] = {}
        self._ourself = ourself
        self._touched: set[int] = set()  # shared with every connection
        self._held: set[int] = set()  # pending gossip not sent at the last flush
        self._overlay_due: list[tuple[float, int]] = []  # (overlay wakeup, conn id) heap

    def add(self, conn: MeshConn) -> None:
        """A new connection (handshake not yet done); its first bytes are waiting."""
        conn.touched = self._touched
        self.by_id[conn.id] = conn
        self._touched.add(conn.id)

    def get(self, conn_id: int) -> MeshConn | None:
        return self.by_id.get(conn_id)

    def to_peer(self, name: int) -> MeshConn | None:
        """The registered connection to peer ``name``, if any."""
        return self.by_peer.get(name)

    def connections_to(self, names: Iterable[int]) -> list[MeshConn]:
        by_peer = self.by_peer
        return [by_peer[n] for n in names if n in by_peer]

    def register(self, conn: MeshConn) -> None:
        self.by_peer[conn.remote_name] = conn
        conn.registered = True

    def remove(self, conn: MeshConn) -> tuple[bool, bool]:
        """Forget ``conn``: (was it in the table?, was it the peer's registered one?)."""
        if self.by_id.pop(conn.id, None) is None:
            return False, False
        registered = conn.registered and self.by_peer.get(conn.remote_name) is conn
        if registered:
            del self.by_peer[conn.remote_name]
        return True, registered

    def mark(self, conn: MeshConn) -> None:
        """``conn`` may have something to send at the next flush."""
        self._touched.add(conn.id)

    def flush(self, now: float, emit: Callable[[Effect], None]) -> float:
        """Turn due pending gossip into messages and all output into Send effects.
        Returns when gossip held back by batching is due (inf if none is)."""
        wakeup = float("inf")
        touched = list(self._touched)
        self._touched.clear()
        for conn_id in touched:
            conn = self.by_id.get(conn_id)
            if conn is None:
                continue
            if conn.pending and now < conn.gossip_ready_at:
                wakeup = min(wakeup, conn.gossip_ready_at)
                self._held.add(conn_id)
            elif conn.registered and conn.writable and conn.pending:
                conn.gossip_ready_at = now + GOSSIP_BATCH
                self._send_pending(conn)
            elif conn.pending:
                self._held.add(conn_id)
            if conn.out:
                emit(Send(conn.id, conn.take_output()))
        return wakeup

    def release_held(self) -> None:
        """Gossip held back at earlier flushes goes at the next one, if it may by then."""
        self._touched |= self._held
        self._held.clear()

    # ---- overlay timers: a heap, so that a wake-up costs the connections due, not all
    def overlay_due(self, conn: MeshConn) -> None:
        """``conn.overlay_wakeup`` was set: remember when it is due."""
        if conn.overlay_wakeup != float("inf"):
            heapq.heappush(self._overlay_due, (conn.overlay_wakeup, conn.id))

    def take_due_overlays(self, now: float) -> list[MeshConn]:
        """The connections whose overlay timers are due (each once; stale entries of
        re-armed or closed connections are dropped on the way)."""
        heap, due = self._overlay_due, {}
        while heap and heap[0][0] <= now:
            _, conn_id = heapq.heappop(heap)
            conn = self.by_id.get(conn_id)
            if conn is not None and conn.overlay is not None and now >= conn.overlay_wakeup:
                due[conn_id] = conn
        return list(due.values())

    def next_overlay_wakeup(self) -> float:
        return self._overlay_due[0][0] if self._overlay_due else float("inf")

    def _send_pending(self, conn: MeshConn) -> None:
        for tag, channel, src, payload in conn.pending.drain():
            origin = self._ourself if src is None else src
            msg = GossipMessage(channel, origin, None, payload)
            conn.send(bytes([tag]) + encode_gossip(tag, msg))
