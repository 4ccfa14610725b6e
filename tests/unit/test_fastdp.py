"""fastdp's heartbeat codec and forwarder timeline (sans-IO)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.fastdp import (
    ACK_TIMEOUT,
    FAST_HEARTBEAT,
    HEARTBEAT_ACK,
    HEARTBEAT_VNI,
    OVERLAY_CONTROL_TAG,
    SLOW_HEARTBEAT,
    TRANSITIONS,
    Event,
    FastdpError,
    FastdpForwarder,
    FastdpOverlay,
    State,
    decode_heartbeat,
    encode_heartbeat,
    vxlan_header,
)
from weavenet.core.overlay.probe import PROBE_INTERVAL_MAX


def test_heartbeat_layout_is_weaves() -> None:
    frame = encode_heartbeat(0x0102030405060708, 1376)
    assert len(frame) == 1390
    assert frame[:14] == bytes(14)
    assert frame[14:22] == bytes.fromhex("0102030405060708")
    assert frame[22:24] == (1390).to_bytes(2, "big")
    assert not any(frame[24:])
    assert decode_heartbeat(frame) == 0x0102030405060708


def test_vxlan_header() -> None:
    assert vxlan_header(0x123456) == bytes.fromhex("0800000012345600")


@given(st.integers(0, 2**64 - 1), st.integers(10, 9000))
def test_heartbeat_round_trip(uid: int, mtu: int) -> None:
    assert decode_heartbeat(encode_heartbeat(uid, mtu)) == uid


@given(st.binary(max_size=200))
def test_random_frames_decode_or_raise_fastdp_error(frame: bytes) -> None:
    try:
        uid = decode_heartbeat(frame)
    except FastdpError:
        return
    assert 0 <= uid < 2**64 and len(frame) == int.from_bytes(frame[22:24], "big")


def test_truncated_heartbeat_is_rejected() -> None:
    frame = encode_heartbeat(5, 1376)
    for cut in (frame[:-1], frame[:20]):
        try:
            decode_heartbeat(cut)
        except FastdpError:
            continue
        raise AssertionError("a truncated heartbeat was accepted")


def _forwarder() -> FastdpForwarder:
    return FastdpForwarder(remote=2, conn_uid=9, remote_ip="10.0.0.2", control_index=0)


def _beat_times(fwd: FastdpForwarder, start: float, end: float, step: float) -> list[float]:
    times, now = [], start
    while now < end:
        fwd.tick(now)
        times += [now] * len(fwd.take_heartbeats())
        now = round(now + step, 6)
    return times


def test_heartbeats_back_off_from_fast_until_acked_then_slow() -> None:
    fwd = _forwarder()
    fwd.confirm(0.0)
    first = fwd.take_heartbeats()
    assert len(first) == 1 and first[0].addr == ("10.0.0.2", 6784)
    assert first[0].payload[:8] == vxlan_header(HEARTBEAT_VNI)
    assert decode_heartbeat(first[0].payload[8:]) == 9
    # 0.5 s, then doubling to PROBE_INTERVAL_MAX: a starved peer is not flooded
    assert _beat_times(fwd, 0.1, 7.55, 0.1) == [0.5, 1.5, 3.5, 5.5, 7.5]
    assert PROBE_INTERVAL_MAX == 2.0
    fwd.control_message(OVERLAY_CONTROL_TAG, bytes((0, HEARTBEAT_ACK)), 7.55)
    assert fwd.state is State.HEALTHY and fwd.established
    beats = _beat_times(fwd, 7.6, 7.6 + 3 * SLOW_HEARTBEAT, 0.1)
    assert len(beats) == 3 and beats[1] - beats[0] >= SLOW_HEARTBEAT - 0.01
    assert FAST_HEARTBEAT < SLOW_HEARTBEAT < ACK_TIMEOUT


def test_an_ack_for_another_index_is_ignored() -> None:
    fwd = _forwarder()
    fwd.confirm(0.0)
    fwd.control_message(OVERLAY_CONTROL_TAG, bytes((1, HEARTBEAT_ACK)), 0.1)
    fwd.control_message(1, b"", 0.1)
    assert fwd.state is State.PROBING


def test_silence_makes_it_unhealthy_and_an_ack_heals_it() -> None:
    fwd = _forwarder()
    fwd.confirm(0.0)
    fwd.control_message(OVERLAY_CONTROL_TAG, bytes((0, HEARTBEAT_ACK)), 1.0)
    fwd.peer_heard(1.0 + ACK_TIMEOUT - 1)  # the peer talks over TCP: it is alive
    fwd.tick(1.0 + ACK_TIMEOUT - 0.1)
    assert fwd.healthy
    fwd.tick(1.0 + ACK_TIMEOUT)
    assert fwd.state is State.UNHEALTHY and "no heartbeat ack" in fwd.why
    assert fwd.established and fwd.error is None  # on hold, never fatal
    fwd.control_message(OVERLAY_CONTROL_TAG, bytes((0, HEARTBEAT_ACK)), 40.0)
    assert fwd.healthy


def test_no_verdict_while_the_peer_is_not_heard_at_all() -> None:
    fwd = _forwarder()
    fwd.confirm(0.0)
    fwd.control_message(OVERLAY_CONTROL_TAG, bytes((0, HEARTBEAT_ACK)), 1.0)
    fwd.peer_heard(1.0)
    for now in (1.0 + ACK_TIMEOUT, 30.0, 60.0):  # starved peer (or we): nothing arrives
        fwd.tick(now)
        assert fwd.healthy
    fwd.peer_heard(61.0)  # it talks again, and still no ack: the path is at fault
    fwd.tick(61.0)
    assert fwd.healthy  # judged at the next look, within PROBE_INTERVAL_MAX
    fwd.tick(60.0 + PROBE_INTERVAL_MAX)
    assert fwd.state is State.UNHEALTHY and "no heartbeat ack" in fwd.why


def test_every_received_heartbeat_is_acknowledged_over_tcp() -> None:
    overlay = FastdpOverlay()
    params = OverlayParams(2, 1, False, 9, "10.0.0.1:6783", "10.0.0.2:51000", None, ())
    fwd = overlay.prepare_forwarder(params, 0)
    assert fwd is not None and fwd.remote_ip == "10.0.0.2"
    fwd.confirm(0.0)
    for _ in range(2):
        assert overlay.heartbeat_frame(encode_heartbeat(9, 1376), 0.5) == 2
    assert fwd.take_control_messages() == [(OVERLAY_CONTROL_TAG, bytes((0, HEARTBEAT_ACK)))] * 2
    assert overlay.heartbeat_frame(encode_heartbeat(10, 1376), 0.5) is None
    assert overlay.heartbeat_frame(b"junk", 0.5) is None
    assert overlay.status()["HeartbeatsRejected"] == 2


def test_stopped_is_final() -> None:
    for (_state, event), target in TRANSITIONS.items():
        if event is Event.STOP:
            assert target is State.STOPPED
    assert not any(state is State.STOPPED for state, _ in TRANSITIONS)
