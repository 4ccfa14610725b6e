"""The overlay switch: negotiation, control-message routing, fallback and promotion."""

from __future__ import annotations

import logging

import pytest

from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.fastdp import (
    ACK_TIMEOUT,
    FASTDP_OVERLAY,
    HEARTBEAT_ACK,
    OVERLAY_CONTROL_TAG,
    FastdpOverlay,
)
from weavenet.core.overlay.sleeve import CONNECTION_ESTABLISHED, SleeveConnection
from weavenet.core.overlay.sleeve_overlay import SleeveOverlay
from weavenet.core.overlay.switch import (
    TRANSITIONS,
    OverlaySwitch,
    Seen,
    SwitchConnection,
    SwitchState,
)


def _switch(fastdp: bool = True) -> OverlaySwitch:
    sleeve = SleeveOverlay(1)
    overlays = [FastdpOverlay(), sleeve] if fastdp else [sleeve]
    return OverlaySwitch(overlays, sleeve)


def _params(
    remote: tuple[str, ...] | None, key: bytes | None = None, outbound: bool = True
) -> OverlayParams:
    return OverlayParams(2, 1, outbound, 77, "10.0.0.1:40000", "10.0.0.2:6783", key, remote)


OURS = (FASTDP_OVERLAY, "sleeve")


def _ack_sleeve(conn: SwitchConnection, index: int, now: float) -> None:
    conn.control_message(OVERLAY_CONTROL_TAG, bytes((index, CONNECTION_ESTABLISHED)), now)


def _ack_fastdp(conn: SwitchConnection, now: float) -> None:
    conn.control_message(OVERLAY_CONTROL_TAG, bytes((0, HEARTBEAT_ACK)), now)


def test_features_list_overlays_in_preference_order() -> None:
    features: dict[str, str] = {}
    _switch().add_features(features)
    assert features == {"Overlays": f"{FASTDP_OVERLAY} sleeve"}


def test_our_peer_gets_both_forwarders_with_their_common_indices() -> None:
    conn = _switch().prepare_connection(_params(OURS))
    assert conn.names == ["fastdp", "sleeve"]
    sleeve = conn.forwarder("sleeve")
    assert sleeve is not None and getattr(sleeve, "control_index", None) == 1


def test_a_go_weaver_shares_only_the_sleeve_at_index_zero() -> None:
    conn = _switch().prepare_connection(_params(("fastdp", "sleeve")))
    assert conn.names == ["sleeve"]
    assert getattr(conn.forwarder("sleeve"), "control_index", None) == 0


def test_compat_mode_uses_the_sleeve_with_unwrapped_messages() -> None:
    conn = _switch().prepare_connection(_params(None))
    assert conn.names == ["sleeve"]
    assert getattr(conn.forwarder("sleeve"), "control_index", "x") is None


def test_encrypted_connections_stay_on_the_sleeve_but_keep_the_indices() -> None:
    conn = _switch().prepare_connection(_params(OURS, key=bytes(32)))
    assert conn.names == ["sleeve"]
    assert getattr(conn.forwarder("sleeve"), "control_index", None) == 1


def test_no_common_overlay_is_an_error() -> None:
    conn = _switch().prepare_connection(_params(("awsvpc",)))
    assert conn.error is not None and "no common overlay" in conn.error
    assert conn.state is SwitchState.FAILED


def _both_up(now: float = 0.0) -> SwitchConnection:
    conn = _switch().prepare_connection(_params(OURS))
    conn.confirm(now)
    _ack_sleeve(conn, 1, now)
    return conn


def test_sleeve_carries_until_fastdp_is_acknowledged_then_fastdp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "weavenet.overlay")
    conn = _both_up()
    assert conn.using == "sleeve" and conn.state is SwitchState.FALLBACK
    assert conn.attrs()["reason"].startswith("fastdp: heartbeats sent")
    _ack_fastdp(conn, 1.0)
    assert conn.using == "fastdp" and conn.state is SwitchState.BEST
    assert "reason" not in conn.attrs() and conn.attrs()["name"] == "fastdp"
    assert "using fastdp: heartbeats through the VXLAN tunnel" in caplog.text


def test_missing_acks_fall_back_and_the_next_ack_promotes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "weavenet.overlay")
    conn = _both_up()
    _ack_fastdp(conn, 1.0)
    _ack_sleeve(conn, 1, 1.0)
    now = 1.0
    while conn.using == "fastdp" and now < 100:
        now += 0.5
        conn.peer_heard(now)  # the peer's other mesh messages keep arriving
        conn.tick(now)
    assert conn.using == "sleeve", "no fallback"
    assert ACK_TIMEOUT <= now - 1.0 <= ACK_TIMEOUT + 1
    assert "no heartbeat ack" in conn.attrs()["reason"]
    assert "overlay_switch ->[00:00:00:00:00:02] using sleeve: fastdp: no heartbeat ack" in (
        caplog.text
    )
    _ack_fastdp(conn, now + 3)
    assert conn.using == "fastdp" and conn.switches == 4  # sleeve, fastdp, sleeve, fastdp


def test_fastdp_keeps_the_connection_when_the_sleeve_fails() -> None:
    conn = _both_up()
    _ack_fastdp(conn, 1.0)
    sleeve = conn.forwarder("sleeve")
    assert sleeve is not None
    now = 1.0
    while sleeve.error is None and now < 200:  # the peer's sleeve heartbeats never come
        now += 10
        conn.tick(now)
        _ack_fastdp(conn, now)
    assert sleeve.error is not None
    assert conn.error is None and conn.using == "fastdp" and conn.established


def test_the_transition_table_covers_every_live_state() -> None:
    for state in SwitchState:
        for seen in Seen:
            target = TRANSITIONS.get((state, seen))
            assert (target is None) == (state is SwitchState.FAILED)


def test_a_closed_connection_carries_nothing() -> None:
    switch = _switch()
    conn = switch.prepare_connection(_params(OURS))
    conn.confirm(0.0)
    _ack_fastdp(conn, 0.5)
    assert switch.peers_using("fastdp") == [2]
    conn.stop()
    conn.tick(1.0)
    assert switch.peers_using("fastdp") == [] and switch.carrier(2) is None


def test_the_sleeve_defers_its_path_tests_only_behind_a_faster_overlay() -> None:
    ours = _switch().prepare_connection(_params(OURS)).forwarder("sleeve")
    go = _switch().prepare_connection(_params(("fastdp", "sleeve"))).forwarder("sleeve")
    compat = _switch().prepare_connection(_params(None)).forwarder("sleeve")
    alone = _switch(fastdp=False).prepare_connection(_params(("sleeve",))).forwarder("sleeve")
    assert isinstance(ours, SleeveConnection) and ours.discovery_deferred
    for conn in (go, compat, alone):  # Go peers and a sleeve of its own: test at once
        assert isinstance(conn, SleeveConnection) and not conn.discovery_deferred
