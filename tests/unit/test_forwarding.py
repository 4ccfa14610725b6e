"""Frame forwarding, flooding and MAC learning (§7.8), rule by rule."""

from __future__ import annotations

import pytest

from weavenet.core.mesh.routes import Routes
from weavenet.core.overlay.forwarding import Forwarder, Send
from weavenet.core.overlay.mac_cache import MAC_MAX_AGE, MacCache

A, B, C, D = 0xA, 0xB, 0xC, 0xD
BCAST = b"\xff" * 6
MCAST = bytes.fromhex("01005e000001")
STP = bytes.fromhex("0180c2000000")
M1, M2, M3 = (bytes([2, 0, 0, 0, 0, n]) for n in (1, 2, 3))

Adj = dict[int, dict[int, bool]]
Learned = list[tuple[bytes, int, int | None]]


def undirected(*edges: tuple[int, int]) -> Adj:
    adj: Adj = {}
    for x, y in edges:
        adj.setdefault(x, {})[y] = True
        adj.setdefault(y, {})[x] = True
    return adj


# A - B - C, and D hangs off B: B is the hub.
ADJ = undirected((A, B), (B, C), (B, D))


def frame(dst: bytes, src: bytes, size: int = 60) -> bytes:
    return dst + src + b"\x08\x00" + bytes(size - 14)


def forwarder(name: int) -> tuple[Forwarder, Routes, Learned, Learned]:
    learned: Learned = []
    conflicts: Learned = []
    fwd = Forwarder(
        name,
        MacCache(),
        on_learn=lambda mac, peer, was: learned.append((mac, peer, was)),
        on_conflict=lambda mac, peer, other: conflicts.append((mac, peer, other)),
    )
    return fwd, Routes(name, ADJ), learned, conflicts


# --- captured -----------------------------------------------------------------------


def test_captured_learns_source_mac_as_local_once() -> None:
    fwd, routes, learned, _ = forwarder(A)
    fwd.captured(frame(BCAST, M1), routes, 0.0)
    fwd.captured(frame(BCAST, M1), routes, 1.0)
    assert fwd.macs.lookup(M1) == A
    assert learned == [(M1, A, None)]


@pytest.mark.parametrize("dst", [BCAST, MCAST, M2], ids=["broadcast", "multicast", "unknown"])
def test_captured_floods_along_our_broadcast_tree(dst: bytes) -> None:
    fwd, routes, _, _ = forwarder(B)
    sends = fwd.captured(frame(dst, M1), routes, 0.0)
    assert routes.broadcast(B) == [A, C, D]
    assert sends == [Send(A, B, A), Send(C, B, C), Send(D, B, D)]
    assert fwd.counters.flooded.frames == 1 and fwd.counters.flooded.bytes == 60


def test_captured_flood_from_a_leaf_goes_to_its_neighbour_only() -> None:
    fwd, routes, _, _ = forwarder(A)
    assert fwd.captured(frame(BCAST, M1), routes, 0.0) == [Send(B, A, B)]


def test_captured_flood_without_neighbours_is_dropped() -> None:
    fwd = Forwarder(A, MacCache())
    assert fwd.captured(frame(BCAST, M1), Routes(A, {A: {}}), 0.0) == []
    assert fwd.counters.dropped.frames == 1 and fwd.counters.flooded.frames == 0


def test_captured_unicast_to_learned_mac_goes_via_next_hop() -> None:
    fwd, routes, _, _ = forwarder(A)
    fwd.macs.learn(M3, C, 0.0)
    assert fwd.captured(frame(M3, M1), routes, 1.0) == [Send(B, A, C)]
    fwd.macs.learn(M2, B, 0.0)
    assert fwd.captured(frame(M2, M1), routes, 1.0) == [Send(B, A, B)]
    assert fwd.counters.forwarded.frames == 2


def test_captured_unicast_to_unreachable_peer_is_dropped() -> None:
    fwd, routes, _, _ = forwarder(A)
    fwd.macs.learn(M3, 0xE, 0.0)  # a peer with no route
    assert fwd.captured(frame(M3, M1), routes, 1.0) == []
    assert fwd.counters.dropped.frames == 1


def test_captured_for_a_local_mac_is_dropped() -> None:
    fwd, routes, _, _ = forwarder(A)
    fwd.captured(frame(BCAST, M2), routes, 0.0)  # M2 is local now
    assert fwd.captured(frame(M2, M1), routes, 1.0) == []
    assert fwd.counters.dropped.frames == 1


def test_captured_stp_is_dropped_after_learning() -> None:
    fwd, routes, learned, _ = forwarder(A)
    assert fwd.captured(frame(STP, M1), routes, 0.0) == []
    assert learned == [(M1, A, None)]
    assert fwd.counters.dropped.frames == 1


def test_captured_from_a_mac_known_at_another_peer_is_dropped() -> None:
    fwd, routes, learned, conflicts = forwarder(A)
    fwd.macs.learn(M1, C, 0.0)
    assert fwd.captured(frame(BCAST, M1), routes, 1.0) == []
    assert fwd.macs.lookup(M1) == C  # not overridden
    assert conflicts == [(M1, A, C)] and learned == []
    assert fwd.counters.dropped.frames == 1


@pytest.mark.parametrize("bad", [b"\xff" * 13, frame(BCAST, MCAST)], ids=["runt", "group-source"])
def test_captured_malformed_is_dropped_without_learning(bad: bytes) -> None:
    fwd, routes, learned, _ = forwarder(A)
    assert fwd.captured(bad, routes, 0.0) == []
    assert learned == [] and fwd.macs.entries() == []


# --- received -----------------------------------------------------------------------


def test_received_for_another_peer_is_relayed_unchanged() -> None:
    fwd, routes, learned, _ = forwarder(B)
    inject, sends = fwd.received(A, C, frame(M3, M1), routes, 0.0)
    assert (inject, sends) == (False, [Send(C, A, C)])
    assert learned == [] and fwd.macs.lookup(M1) is None  # relays do not learn
    assert fwd.counters.relayed.frames == 1


def test_received_relay_with_no_route_is_dropped() -> None:
    fwd, routes, _, _ = forwarder(B)
    assert fwd.received(A, 0xE, frame(M3, M1), routes, 0.0) == (False, [])
    assert fwd.counters.dropped.frames == 1


def test_received_broadcast_is_injected_learned_and_reflooded() -> None:
    fwd, routes, learned, _ = forwarder(B)
    inject, sends = fwd.received(A, B, frame(BCAST, M1), routes, 0.0)
    assert inject
    assert routes.broadcast(A) == [C, D]
    assert sends == [Send(C, A, C), Send(D, A, D)]  # dst = each hop, src kept
    assert fwd.macs.lookup(M1) == A and learned == [(M1, A, None)]
    assert fwd.counters.injected.frames == 1 and fwd.counters.flooded.frames == 1


def test_received_broadcast_at_a_leaf_is_only_injected() -> None:
    fwd, routes, _, _ = forwarder(C)
    assert fwd.received(A, C, frame(BCAST, M1), routes, 0.0) == (True, [])


def test_received_unicast_to_a_local_mac_is_not_reflooded() -> None:
    fwd, routes, _, _ = forwarder(B)
    fwd.captured(frame(BCAST, M2), routes, 0.0)  # M2 local to B
    assert fwd.received(A, B, frame(M2, M1), routes, 1.0) == (True, [])


def test_received_unicast_to_an_unknown_mac_is_reflooded() -> None:
    fwd, routes, _, _ = forwarder(B)
    assert fwd.received(A, B, frame(M2, M1), routes, 0.0) == (True, [Send(C, A, C), Send(D, A, D)])


def test_received_mac_moves_between_peers_and_overrides_local() -> None:
    fwd, routes, learned, _ = forwarder(B)
    fwd.captured(frame(BCAST, M1), routes, 0.0)  # M1 local to B
    fwd.received(A, B, frame(BCAST, M1), routes, 1.0)
    assert fwd.macs.lookup(M1) == A
    fwd.received(C, B, frame(BCAST, M1), routes, 2.0)
    assert fwd.macs.lookup(M1) == C
    assert learned == [(M1, B, None), (M1, A, B), (M1, C, A)]
    # Now a local capture from M1 conflicts with C's claim and is dropped.
    assert fwd.captured(frame(BCAST, M1), routes, 3.0) == []


@pytest.mark.parametrize(
    ("src", "bad"),
    [(A, b"\xff" * 13), (A, frame(BCAST, MCAST)), (B, frame(BCAST, M1))],
    ids=["runt", "group-source", "claims-to-be-from-us"],
)
def test_received_malformed_is_dropped(src: int, bad: bytes) -> None:
    fwd, routes, learned, _ = forwarder(B)
    assert fwd.received(src, B, bad, routes, 0.0) == (False, [])
    assert learned == [] and fwd.counters.dropped.frames == 1


# --- MAC cache ----------------------------------------------------------------------


def test_mac_cache_expiry_and_refresh_interval() -> None:
    cache = MacCache()
    assert cache.learn(M1, A, 0.0) is True
    assert cache.learn(M1, A, 59.0) is False  # too soon to refresh
    assert cache.expire(MAC_MAX_AGE) == []  # exactly max age: still there
    assert cache.expire(MAC_MAX_AGE + 0.5) == [M1]
    assert cache.lookup(M1) is None
    cache.learn(M2, A, 0.0)
    cache.learn(M2, A, 60.0)  # refreshed (MAC_MAX_AGE / 10 later)
    assert cache.expire(MAC_MAX_AGE + 0.5) == []
    assert cache.expire(MAC_MAX_AGE + 60.5) == [M2]


def test_mac_cache_claim_reports_conflicts_and_moves() -> None:
    cache = MacCache()
    assert cache.claim(M1, A, 0.0) == (True, None)
    assert cache.claim(M1, A, 1.0) == (False, None)
    assert cache.claim(M1, B, 2.0) == (False, A)
    assert cache.lookup(M1) == A
    assert cache.claim(M1, B, 3.0, force=True) == (True, A)
    assert cache.entries() == [(M1, B, 3.0)]


def test_mac_cache_forget_peer() -> None:
    cache = MacCache()
    cache.learn(M1, A, 0.0)
    cache.learn(M2, B, 0.0)
    cache.learn(M3, A, 5.0)
    assert sorted(cache.forget_peer(A)) == [M1, M3]
    assert cache.entries() == [(M2, B, 0.0)] and len(cache) == 1
    assert cache.forget_peer(A) == []
