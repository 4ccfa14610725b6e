"""Ready lists: output is collected from the forwarders that queued it, and nothing is
lost or duplicated compared with asking every forwarder (the behaviour they replace)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.fast_sleeve import FastSleeveOverlay
from weavenet.core.overlay.fastdp import FastdpOverlay
from weavenet.core.overlay.probe import Heartbeat
from weavenet.core.overlay.ready import ReadyList
from weavenet.core.overlay.sleeve_codec import Special
from weavenet.core.overlay.sleeve_overlay import SleeveOverlay

US = 0x0A0000000001


def _params(peer: int, uid: int) -> OverlayParams:
    addr = f"10.0.{peer >> 8}.{peer & 0xFF}:6783"
    return OverlayParams(peer, US, True, uid, "10.0.0.1:40000", addr, None, ("x",))


@given(st.lists(st.one_of(st.integers(0, 9), st.none()), max_size=60))
def test_ready_list_hands_over_every_item_once_in_order(ops: list[int | None]) -> None:
    ready: ReadyList[int] = ReadyList()
    added: list[int] = []
    drained: list[int] = []
    for op in ops:
        if op is None:
            drained += ready.drain()
        else:
            ready.add(op)
            added.append(op)
        assert len(ready) == len(added) - len(drained)
    drained += ready.drain()
    assert drained == added and ready.drain() == []


# each op: (peer index, seconds to advance); peer -1 collects the heartbeats
_OPS = st.lists(st.tuples(st.integers(-1, 5), st.floats(0.0, 3.0)), max_size=80)


def _beats(beats: list[Heartbeat]) -> list[tuple[int, bytes]]:
    return sorted((b.peer, b.payload) for b in beats)


@settings(max_examples=60)
@given(_OPS, st.sets(st.integers(0, 5)), st.booleans())
def test_probed_overlays_collect_what_asking_everyone_would(
    ops: list[tuple[int, float]], acked: set[int], fast_sleeve: bool
) -> None:
    overlay = FastSleeveOverlay() if fast_sleeve else FastdpOverlay()
    fwds = [overlay.prepare_forwarder(_params(p + 2, 100 + p), 0) for p in range(6)]
    now = 0.0
    for fwd in fwds:
        assert fwd is not None
        fwd.confirm(now)
    got, everyone = _beats(overlay.take_heartbeats()), 6
    assert len(got) == everyone  # each confirm sends one at once
    for peer, step in ops:
        now += step
        if peer == -1:
            got += _beats(overlay.take_heartbeats())
            continue
        fwd = fwds[peer]
        assert fwd is not None
        if peer in acked:
            fwd.control_message(7, bytes((0, 0)), now)
        fwd.tick(now)
    got += _beats(overlay.take_heartbeats())
    # the reference: ask every forwarder, as the overlays did before ready lists
    leftover = [b for fwd in fwds if fwd is not None for b in fwd.take_heartbeats()]
    assert leftover == []
    ticks = sum(1 for peer, _ in ops if peer >= 0)
    assert everyone <= len(got) <= everyone + ticks


@settings(max_examples=60)
@given(_OPS)
def test_sleeve_overlay_collects_what_asking_everyone_would(ops: list[tuple[int, float]]) -> None:
    overlay = SleeveOverlay(US)
    conns = [overlay.prepare_forwarder(_params(p + 2, 100 + p), 0) for p in range(6)]
    now, collected = 0.0, 0
    for conn in conns:
        conn.confirm(now)
    for peer, step in ops:
        now += step
        if peer == -1:
            collected += sum(len(c.take_datagrams()) for c in overlay.take_ready())
            continue
        conn = conns[peer]
        conn.special_frame(Special("heartbeat", conn_uid=conn.conn_uid), ("10.0.0.9", 1), now)
        conn.tick(now)
    collected += sum(len(c.take_datagrams()) for c in overlay.take_ready())
    assert all(c.take_datagrams() == [] for c in conns)  # nothing left behind
    assert collected >= len(conns)  # at least the heartbeat each sent on confirm


def test_an_idle_overlay_has_nothing_ready() -> None:
    overlay = FastdpOverlay()
    for p in range(50):
        fwd = overlay.prepare_forwarder(_params(p + 2, 100 + p), 0)
        assert fwd is not None
        fwd.confirm(0.0)
    assert len(overlay.take_heartbeats()) == 50
    for fwd in overlay.connections.values():
        fwd.tick(0.1)  # nothing due yet
    assert len(overlay.ready) == 0 and overlay.take_heartbeats() == []


def test_fast_sleeve_hands_each_new_forwarder_over_once_for_sizing() -> None:
    overlay = FastSleeveOverlay()
    first = [overlay.prepare_forwarder(_params(p + 2, 100 + p), 0) for p in range(3)]
    assert overlay.take_unsized() == first and overlay.take_unsized() == []
    again = overlay.prepare_forwarder(_params(2, 999), 0)  # a new connection to peer 2
    assert overlay.take_unsized() == [again] and again is not first[0]
