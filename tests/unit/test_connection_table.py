"""The connection table's overlay-timer heap: a wake-up hands over exactly the
connections whose overlay timers are due, each once, whatever was re-armed or closed."""

from __future__ import annotations

from typing import cast

from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.mesh.conn import MeshConn
from weavenet.core.mesh.connections import ConnectionTable
from weavenet.core.mesh.crypto import MessageCodec
from weavenet.core.mesh.features import RemoteFeatures
from weavenet.core.mesh.handshake import Handshake
from weavenet.core.mesh.overlay import OverlayConnection

INF = float("inf")


def _conn(conn_id: int) -> MeshConn:
    conn = MeshConn(conn_id, True, "a:1", "b:2", None, 1, cast(Handshake, None), INF)
    conn.overlay = cast(OverlayConnection, object())  # only its presence matters here
    return conn


# per connection: the wake-ups it is armed with, in order (the last one counts)
arming = st.lists(st.floats(0, 10) | st.just(INF), min_size=1, max_size=4)


@given(st.lists(arming, min_size=1, max_size=12), st.sets(st.integers(0, 11)), st.floats(0, 10))
def test_due_overlays_are_exactly_those_due(
    armed: list[list[float]], closed: set[int], now: float
) -> None:
    table = ConnectionTable(ourself=1)
    conns = [_conn(i) for i in range(len(armed))]
    for conn, wakeups in zip(conns, armed, strict=True):
        table.add(conn)
        for when in wakeups:
            conn.overlay_wakeup = when
            table.overlay_due(conn)
    for i in closed & set(range(len(conns))):
        table.remove(conns[i])
    due = table.take_due_overlays(now)
    expected = {c.id for c in conns if c.id not in closed and c.overlay_wakeup <= now}
    assert sorted(c.id for c in due) == sorted(expected)
    assert table.take_due_overlays(now) == []  # handed over once
    later = [c.overlay_wakeup for c in conns if c.id not in closed and c.overlay_wakeup > now]
    assert table.next_overlay_wakeup() <= min(later, default=INF)


def test_held_gossip_is_flushed_once_released() -> None:
    table = ConnectionTable(ourself=1)
    conn = _conn(7)
    conn.remote = RemoteFeatures(2, "two", 3, 4, None, False, None)
    conn.codec = MessageCodec(None, outbound=True)  # plain framing
    table.add(conn)
    table.register(conn)
    conn.pending.add_gossip("topology", _Data())
    conn.gossip_ready_at = 5.0
    sent: list[object] = []
    assert table.flush(1.0, sent.append) == 5.0  # held back by batching
    assert conn.pending
    table.flush(6.0, sent.append)  # not touched since: nothing happens
    assert conn.pending
    table.release_held()
    table.flush(6.0, sent.append)
    assert not conn.pending
    assert len(sent) == 1  # one Send with the gossip


class _Data:
    def encode(self) -> list[bytes]:
        return [b"x"]

    def merge(self, other: object) -> _Data:
        return self
