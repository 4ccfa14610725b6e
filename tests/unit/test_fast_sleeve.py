"""The fast sleeve's forwarder, packet path (two ends in memory) and its place in the
overlay switch (fastdp, then fast sleeve, then sleeve)."""

from __future__ import annotations

import logging
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.fast_sleeve import (
    FAST_SLEEVE,
    FAST_SLEEVE_OVERLAY,
    FastSleeveForwarder,
    FastSleeveOverlay,
)
from weavenet.core.overlay.fast_sleeve_codec import HEADER, PEERS
from weavenet.core.overlay.fast_sleeve_path import Delivered, FastSleevePath
from weavenet.core.overlay.fastdp import FASTDP_OVERLAY, FastdpOverlay
from weavenet.core.overlay.probe import (
    ACK_TIMEOUT,
    HEARTBEAT_ACK,
    OVERLAY_CONTROL_TAG,
    TRANSITIONS,
    Event,
    State,
)
from weavenet.core.overlay.sleeve import CONNECTION_ESTABLISHED
from weavenet.core.overlay.sleeve_overlay import SleeveOverlay
from weavenet.core.overlay.switch import OverlaySwitch, SwitchConnection, SwitchState
from weavenet.core.overlay.vnet import ZERO_VNET

A, B = 0xAA0000000001, 0xBB0000000002
KEY = bytes(range(32))
ALL = (FASTDP_OVERLAY, FAST_SLEEVE_OVERLAY, "sleeve")


def _params(
    remote: int, local: int, outbound: bool, key: bytes | None, theirs: tuple[str, ...] | None
) -> OverlayParams:
    return OverlayParams(remote, local, outbound, 77, "10.0.0.1:1", "10.0.0.2:6783", key, theirs)


def _pair(key: bytes | None) -> tuple[FastSleevePath, FastSleevePath]:
    """A's and B's paths with one confirmed, acked forwarder each (for each other)."""
    paths = []
    for local, remote, outbound in ((A, B, True), (B, A, False)):
        overlay = FastSleeveOverlay()
        fwd = overlay.prepare_forwarder(_params(remote, local, outbound, key, ALL), 1)
        assert fwd is not None
        fwd.confirm(0.0)
        fwd.control_message(OVERLAY_CONTROL_TAG, bytes((1, HEARTBEAT_ACK)), 0.1)
        fwd.set_datagram_size(1000)
        paths.append(FastSleevePath(local, overlay))
    return paths[0], paths[1]


def _wire(path: FastSleevePath) -> list[bytes]:
    """The datagrams of the queued sends, as the kernel's UDP_SEGMENT would cut them."""
    out = []
    for send in path.take_sends():
        run = b"".join(bytes(b) for b in send.iov)
        out.extend(run[i : i + send.segment] for i in range(0, len(run), send.segment))
    return out


def _deliver(path: FastSleevePath, datagrams: list[bytes]) -> list[Delivered]:
    got = []
    for d in datagrams:
        got.extend(path.received(d, len(d), 0, 1.0))
    return got


def _data(frame: bytes) -> bytes:
    return A.to_bytes(6, "big") + B.to_bytes(6, "big") + ZERO_VNET + frame


FRAME = bytes(range(256)) * 200  # 51,200 bytes: 52 datagrams


@pytest.mark.parametrize("key", [None, KEY])
def test_a_superframe_crosses_whole_plain_or_sealed(key: bytes | None) -> None:
    a, b = _pair(key)
    fwd = a.overlay.connections[B]
    a.send(fwd, _data(FRAME))
    datagrams = _wire(a)
    assert len(datagrams) > 40 and all(len(d) <= 1000 for d in datagrams)
    assert (FRAME[:100] in b"".join(datagrams)) is (key is None)
    got = _deliver(b, datagrams[::-1])  # GRO runs, reordering: the same to the path
    assert [(g.sender, g.src, g.dst) for g in got] == [(A, A, B)]
    assert bytes(memoryview(got[0].packet)[PEERS + 10 :]) == FRAME


def test_gro_runs_are_cut_at_the_segment_size() -> None:
    a, b = _pair(KEY)
    a.send(a.overlay.connections[B], _data(FRAME))
    run = b"".join(_wire(a))
    got = b.received(run, len(run), 1000, 1.0)
    assert len(got) == 1 and b.overlay.counters.receives == 1


def test_a_replayed_datagram_is_dropped_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = _pair(KEY)
    a.send(a.overlay.connections[B], _data(FRAME))
    datagrams = _wire(a)
    assert len(_deliver(b, datagrams)) == 1
    with caplog.at_level(logging.WARNING, "weavenet.fastsleeve"):
        assert _deliver(b, [datagrams[3], datagrams[-1]]) == []
    assert b.overlay.counters.replayed == 2 and b.overlay.counters.forged == 0
    assert [r.getMessage() for r in caplog.records] == [
        "fast sleeve: dropped a replayed datagram from aa:00:00:00:00:01 "
        "(so far: 1 replayed, 0 forged)"
    ]


def test_a_tampered_datagram_spoils_its_superframe_only() -> None:
    a, b = _pair(KEY)
    fwd = a.overlay.connections[B]
    a.send(fwd, _data(FRAME))
    bad = _wire(a)
    bad[5] = bad[5][:HEADER] + bytes([bad[5][HEADER] ^ 0x40]) + bad[5][HEADER + 1 :]
    assert _deliver(b, bad) == []
    assert b.overlay.counters.forged == 1
    a.send(fwd, _data(FRAME))
    assert len(_deliver(b, _wire(a))) == 1  # the window did not move for the forgery


def test_a_datagram_from_an_unknown_peer_or_garbage_is_malformed() -> None:
    _a, b = _pair(None)
    assert _deliver(b, [b"\xf5garbage", bytes(40)]) == []
    stranger, _ = _pair(None)
    stranger.ourself = 0xCC0000000003
    stranger.send(stranger.overlay.connections[B], _data(b"x" * 100))
    assert _deliver(b, _wire(stranger)) == []
    assert b.overlay.counters.malformed == 3


def test_heartbeats_are_superframes_acked_over_the_control_connection() -> None:
    a, b = _pair(KEY)
    fwd = a.overlay.connections[B]
    a.overlay.take_heartbeats()  # the one sent on confirm, before the size was known
    fwd.tick(100.0)  # SLOW_HEARTBEAT has passed: one heartbeat is due
    a.send_heartbeats()
    beats = _wire(a)
    assert len(beats) == 1 and len(beats[0]) == 1000  # one full datagram: probes the size
    assert _deliver(b, beats) == [] and b.changed == {A}
    ack = b.overlay.connections[A].take_control_messages()
    assert ack == [(OVERLAY_CONTROL_TAG, bytes((1, HEARTBEAT_ACK)))]


def test_forwarder_health_follows_acks() -> None:
    fwd = FastSleeveForwarder(B, 77, "10.0.0.2", 1)
    assert fwd.state is State.IDLE
    fwd.confirm(0.0)
    assert fwd.state is State.PROBING and fwd.take_heartbeats()
    fwd.control_message(OVERLAY_CONTROL_TAG, bytes((1, HEARTBEAT_ACK)), 1.0)
    assert fwd.healthy and fwd.established
    fwd.peer_heard(ACK_TIMEOUT)  # the peer is alive over TCP
    fwd.tick(1.0 + ACK_TIMEOUT)
    assert fwd.state is State.UNHEALTHY and "UDP 6785 blocked?" in fwd.why
    fwd.control_message(OVERLAY_CONTROL_TAG, bytes((1, HEARTBEAT_ACK)), 30.0)
    assert fwd.healthy
    fwd.stop()
    assert fwd.state is State.STOPPED
    assert (State.STOPPED, Event.ACK) not in TRANSITIONS
    assert fwd.attrs() == {"name": FAST_SLEEVE, "mtu": 1472}


def _switch(fastdp: bool = True, fast: bool = True) -> OverlaySwitch:
    sleeve = SleeveOverlay(A)
    overlays = [o for o, on in ((FastdpOverlay(), fastdp), (FastSleeveOverlay(), fast)) if on]
    return OverlaySwitch([*overlays, sleeve], sleeve)


def _ack(conn: SwitchConnection, index: int, now: float, tag: int = HEARTBEAT_ACK) -> None:
    conn.peer_heard(now)  # as the router does for every message on the connection
    conn.control_message(OVERLAY_CONTROL_TAG, bytes((index, tag)), now)


def test_three_overlays_in_preference_order() -> None:
    features: dict[str, str] = {}
    _switch().add_features(features)
    assert features == {"Overlays": " ".join(ALL)}
    conn = _switch().prepare_connection(_params(B, A, True, None, ALL))
    assert conn.names == ["fastdp", FAST_SLEEVE, "sleeve"]
    conn.confirm(0.0)
    _ack(conn, 2, 0.1, CONNECTION_ESTABLISHED)
    assert conn.using == "sleeve"
    _ack(conn, 1, 0.2)
    assert conn.using == FAST_SLEEVE and conn.state is SwitchState.FALLBACK
    assert "fastdp: heartbeats sent" in conn.attrs()["reason"]
    _ack(conn, 0, 0.3)
    assert conn.using == "fastdp" and conn.state is SwitchState.BEST
    _ack(conn, 1, 10.0)
    conn.tick(0.3 + ACK_TIMEOUT)  # fastdp silent, the fast sleeve acked at 10 s
    assert conn.using == FAST_SLEEVE and "fastdp: no heartbeat ack" in conn.attrs()["reason"]
    conn.peer_heard(10.0 + ACK_TIMEOUT - 1)  # both silent, the peer alive: the sleeve carries
    conn.tick(10.0 + ACK_TIMEOUT)
    assert conn.using == "sleeve"
    _ack(conn, 0, 30.0)
    assert conn.using == "fastdp"


def test_encrypted_connections_never_use_fastdp() -> None:
    conn = _switch().prepare_connection(_params(B, A, True, KEY, ALL))
    assert conn.names == [FAST_SLEEVE, "sleeve"]
    conn.confirm(0.0)
    _ack(conn, 1, 0.1)  # its index in the common list (fastdp's 0 stays unused)
    assert conn.using == FAST_SLEEVE


def test_go_peers_and_no_fast_sleeve_keep_the_sleeve() -> None:
    go = _switch().prepare_connection(_params(B, A, True, None, ("fastdp", "sleeve")))
    assert go.names == ["sleeve"]
    compat = _switch().prepare_connection(_params(B, A, True, None, None))
    assert compat.names == ["sleeve"]
    off = _switch(fast=False).prepare_connection(_params(B, A, True, None, ALL))
    assert off.names == ["fastdp", "sleeve"]


@given(st.lists(st.integers(1, 20), min_size=1, max_size=60), st.randoms(), st.booleans())
@settings(max_examples=40, deadline=None)
def test_gro_runs_in_any_grouping_and_order_give_the_superframe_once(
    cuts: list[int], rng: random.Random, sealed: bool
) -> None:
    a, b = _pair(KEY if sealed else None)
    a.send(a.overlay.connections[B], _data(FRAME))
    datagrams = _wire(a)
    runs, i = [], 0
    for n in [*cuts, len(datagrams)]:  # consecutive datagrams, as UDP GRO coalesces them
        if i < len(datagrams):
            runs.append(b"".join(datagrams[i : i + n]))
            i += n
    runs += rng.sample(runs, k=min(2, len(runs)))  # duplicated runs
    rng.shuffle(runs)
    got = []
    for run in runs:
        got.extend(b.received(run, len(run), 1000, 1.0))
    assert len(got) == 1 and bytes(memoryview(got[0].packet)[PEERS + 10 :]) == FRAME
