"""Overlay negotiation: the features we advertise and the control index Go expects."""

from __future__ import annotations

from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.sleeve_overlay import SleeveOverlay, common_overlays


def _params(remote_overlays: tuple[str, ...] | None, outbound: bool = True) -> OverlayParams:
    return OverlayParams(
        remote_name=2,
        local_name=1,
        outbound=outbound,
        conn_uid=99,
        local_addr="10.0.0.1:40000",
        remote_addr="10.0.0.2:6783",
        session_key=None,
        remote_overlays=remote_overlays,
    )


def test_features_advertise_sleeve() -> None:
    features: dict[str, str] = {}
    SleeveOverlay(1).add_features(features)
    assert features == {"Overlays": "sleeve"}


def test_common_list_follows_our_order() -> None:
    assert common_overlays(("fastdp", "sleeve"), ("sleeve", "fastdp")) == ["fastdp", "sleeve"]
    assert common_overlays(("sleeve",), ("fastdp", "sleeve")) == ["sleeve"]


def test_a_fastdp_weaver_talks_sleeve_with_index_zero() -> None:
    conn = SleeveOverlay(1).prepare_connection(_params(("fastdp", "sleeve")))
    assert conn.control_index == 0 and conn.error is None
    assert conn.remote_addr == ("10.0.0.2", 6783)


def test_a_peer_without_overlays_feature_is_compat_mode() -> None:
    conn = SleeveOverlay(1).prepare_connection(_params(None, outbound=False))
    assert conn.control_index is None and conn.remote_addr is None


def test_no_common_overlay_is_an_error() -> None:
    conn = SleeveOverlay(1).prepare_connection(_params(("awsvpc",)))
    assert conn.error is not None and "no common overlay" in conn.error


def test_a_new_connection_replaces_the_old_one() -> None:
    overlay = SleeveOverlay(1)
    first = overlay.prepare_connection(_params(("sleeve",)))
    second = overlay.prepare_connection(_params(("sleeve",)))
    assert overlay.connections[2] is second and first is not second
    overlay.forget(first)
    assert overlay.connections[2] is second
    overlay.forget(second)
    assert 2 not in overlay.connections
