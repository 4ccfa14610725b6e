"""An overlay of many peers paces its established forwarders' heartbeats
(probe.slow_heartbeat): every 4 s up to 32 peers, then at most 8 a second for the
overlay, up to Go's 10 s; the ack timeout is four heartbeats."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.fast_sleeve import FastSleeveOverlay
from weavenet.core.overlay.fastdp import FastdpForwarder, FastdpOverlay
from weavenet.core.overlay.probe import (
    ACK_TIMEOUT,
    HEARTBEAT_ACK,
    HEARTBEATS_PER_SECOND,
    MAX_SLOW_HEARTBEAT,
    MISSED_ACKS,
    OVERLAY_CONTROL_TAG,
    SLOW_HEARTBEAT,
    ProbedForwarder,
    State,
    slow_heartbeat,
)

ACK = bytes((0, HEARTBEAT_ACK))


def _params(remote: int) -> OverlayParams:
    return OverlayParams(remote, 1, False, 1000 + remote, "10.0.0.1:6783", "10.0.0.2:1", None, ())


def _overlay(peers: int) -> FastdpOverlay:
    overlay = FastdpOverlay()
    for remote in range(2, 2 + peers):
        assert overlay.prepare_forwarder(_params(remote), 0) is not None
    return overlay


def _established(fwd: ProbedForwarder) -> None:
    fwd.confirm(0.0)
    fwd.take_heartbeats()
    fwd.control_message(OVERLAY_CONTROL_TAG, ACK, 0.1)
    assert fwd.established


def _beats(fwd: FastdpForwarder, start: float, end: float) -> list[float]:
    times, now = [], start
    while now < end:
        fwd.peer_heard(now)
        fwd.tick(now)
        times += [now] * len(fwd.take_heartbeats())
        now = round(now + 0.1, 6)
    return times


def test_the_pace_is_weavenets_then_bounded_per_overlay_then_gos() -> None:
    assert slow_heartbeat(1) == slow_heartbeat(32) == SLOW_HEARTBEAT == 4.0
    assert slow_heartbeat(40) == 40 / HEARTBEATS_PER_SECOND == 5.0
    assert slow_heartbeat(80) == slow_heartbeat(200) == MAX_SLOW_HEARTBEAT == 10.0


@given(st.integers(1, 400), st.integers(1, 400))
def test_more_peers_never_heartbeat_faster(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert slow_heartbeat(low) <= slow_heartbeat(high) <= MAX_SLOW_HEARTBEAT
    assert high / slow_heartbeat(high) <= max(high / SLOW_HEARTBEAT, HEARTBEATS_PER_SECOND)


def test_a_hundred_peers_heartbeat_every_10_s_and_wait_four_for_an_ack() -> None:
    overlay = _overlay(100)
    fwd = overlay.connections[50]
    _established(fwd)
    beats = _beats(fwd, 0.2, 0.2 + 3 * MAX_SLOW_HEARTBEAT)
    assert [round(b - a, 1) for a, b in itertools.pairwise(beats)] == [10.0, 10.0]
    deadline = 0.1 + MISSED_ACKS * MAX_SLOW_HEARTBEAT
    fwd.peer_heard(deadline - 1)  # the peer talks over TCP: a missing ack is the path's
    fwd.tick(deadline - 0.2)
    assert fwd.healthy  # 16 s would have judged it silent long ago
    fwd.tick(deadline)
    assert fwd.state is State.UNHEALTHY and "no heartbeat ack for 40s" in fwd.why


def test_a_small_overlay_keeps_4_s_and_16_s() -> None:
    fwd = _overlay(3).connections[2]
    _established(fwd)
    beats = _beats(fwd, 0.2, 0.2 + 3 * SLOW_HEARTBEAT)
    assert [round(b - a, 1) for a, b in itertools.pairwise(beats)] == [4.0, 4.0]
    assert MISSED_ACKS * SLOW_HEARTBEAT == ACK_TIMEOUT


def test_the_first_ack_is_awaited_as_before_whatever_the_size() -> None:
    fwd = _overlay(100).connections[7]
    fwd.confirm(0.0)
    fwd.peer_heard(ACK_TIMEOUT)
    fwd.tick(ACK_TIMEOUT)
    assert fwd.state is State.UNHEALTHY and f"for {ACK_TIMEOUT:g}s" in fwd.why


def test_peers_leaving_speed_the_rest_up_again() -> None:
    overlay = _overlay(100)
    for remote in range(2, 92):
        overlay.connections[remote].stop()
        overlay.forget(remote)
    fwd = overlay.connections[95]
    _established(fwd)
    beats = _beats(fwd, 0.2, 0.2 + 3 * SLOW_HEARTBEAT)
    assert len(overlay.connections) == 10 and len(beats) == 3


def test_the_fast_sleeve_is_paced_too() -> None:
    overlay = FastSleeveOverlay()
    for remote in range(2, 102):
        overlay.prepare_forwarder(_params(remote), 0)
    fwd = overlay.connections[9]
    _established(fwd)
    fwd.peer_heard(0.1 + ACK_TIMEOUT)
    fwd.tick(0.1 + ACK_TIMEOUT)
    assert fwd.healthy
