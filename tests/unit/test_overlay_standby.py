"""Standby forwarders: behind a healthy carrier they heartbeat slowly and allow a longer
ack window; promoted when the carrier fails, they heartbeat at once and are judged as an
active forwarder again. Driven through the overlay switch with simulated paths: each
heartbeat on a working path is acknowledged at once."""

from __future__ import annotations

import itertools

from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.fast_sleeve import FAST_SLEEVE, FAST_SLEEVE_OVERLAY, FastSleeveOverlay
from weavenet.core.overlay.fastdp import FASTDP_OVERLAY, FastdpOverlay
from weavenet.core.overlay.probe import (
    ACK_TIMEOUT,
    HEARTBEAT_ACK,
    OVERLAY_CONTROL_TAG,
    PROBE_INTERVAL_MAX,
    PROMOTION_GRACE,
    SLOW_HEARTBEAT,
    STANDBY_ACK_TIMEOUT,
    STANDBY_HEARTBEAT,
    ProbedForwarder,
)
from weavenet.core.overlay.sleeve_overlay import SleeveOverlay
from weavenet.core.overlay.switch import OverlaySwitch, SwitchConnection

A, B = 0xAA0000000001, 0xBB0000000002
ALL = (FASTDP_OVERLAY, FAST_SLEEVE_OVERLAY, "sleeve")
STEP = 0.1


def _connection() -> SwitchConnection:
    sleeve = SleeveOverlay(A)
    switch = OverlaySwitch([FastdpOverlay(), FastSleeveOverlay(), sleeve], sleeve)
    params = OverlayParams(B, A, True, 77, "10.0.0.1:1", "10.0.0.2:6783", None, ALL)
    return switch.prepare_connection(params)


class Paths:
    """Runs the connection's clock; ``working`` holds the indexes of the probed
    forwarders (0 fastdp, 1 the fast sleeve) whose heartbeats get acked."""

    def __init__(self) -> None:
        self.conn = _connection()
        self.working = {0, 1}
        self.peer_alive = True  # its mesh messages arrive (whatever the UDP paths do)
        self.beats: dict[int, list[float]] = {0: [], 1: []}
        self.now = 0.0
        self.conn.confirm(self.now)
        self._deliver()

    def probed(self, index: int) -> ProbedForwarder:
        fwd = self.conn.forwarders[index]
        assert isinstance(fwd, ProbedForwarder)
        return fwd

    def _deliver(self) -> None:
        for index in (0, 1):
            sent = self.probed(index).take_heartbeats()
            self.beats[index] += [self.now] * len(sent)
            if sent and index in self.working:
                self.conn.control_message(
                    OVERLAY_CONTROL_TAG, bytes((index, HEARTBEAT_ACK)), self.now
                )

    def run_until(self, end: float) -> None:
        while self.now < end - 1e-9:
            self.now = round(self.now + STEP, 6)
            if self.peer_alive:
                self.conn.peer_heard(self.now)
            self.conn.tick(self.now)
            self._deliver()

    def gaps(self, index: int, since: float) -> list[float]:
        times = [t for t in self.beats[index] if t >= since]
        return [round(b - a, 6) for a, b in itertools.pairwise(times)]


def test_behind_a_healthy_carrier_the_fast_sleeve_heartbeats_slowly() -> None:
    paths = Paths()
    paths.run_until(5.0)
    assert paths.conn.using == "fastdp"
    assert not paths.probed(0).standby and paths.probed(1).standby
    paths.run_until(5.0 + 4 * STANDBY_HEARTBEAT)
    assert paths.gaps(1, 5.0) and all(
        abs(g - STANDBY_HEARTBEAT) <= STEP for g in paths.gaps(1, 5.0)
    )
    assert all(abs(g - SLOW_HEARTBEAT) <= STEP for g in paths.gaps(0, 5.0))
    assert STANDBY_HEARTBEAT > SLOW_HEARTBEAT


def test_a_standby_allows_the_longer_ack_window_and_stays_healthy() -> None:
    paths = Paths()
    paths.run_until(5.0)
    paths.working = {0}  # the fast sleeve's path breaks; it is on standby
    paths.run_until(5.0 + ACK_TIMEOUT + 2 * STEP)
    assert paths.probed(1).healthy, "judged on the active window while on standby"
    paths.run_until(5.0 + STANDBY_ACK_TIMEOUT + 2 * STEP)
    assert not paths.probed(1).healthy
    assert paths.conn.using == "fastdp"


def test_when_the_carrier_fails_the_standby_is_promoted_and_heartbeats_at_once() -> None:
    paths = Paths()
    paths.run_until(22.0)  # off the standby's 16 s grid: the promotion beat stands alone
    fastdp_acked = paths.beats[0][-1]
    paths.working = {1}  # fastdp's path breaks
    while paths.conn.using == "fastdp" and paths.now < 60.0:
        paths.run_until(paths.now + STEP)
    promoted_at = paths.now
    assert paths.conn.using == FAST_SLEEVE and not paths.probed(1).standby
    assert promoted_at <= fastdp_acked + ACK_TIMEOUT + STEP, "promoted when fastdp fell silent"
    assert paths.beats[1].count(promoted_at) == 1, "one heartbeat at once on promotion"
    paths.run_until(promoted_at + 3 * SLOW_HEARTBEAT + STEP)
    assert paths.gaps(1, promoted_at) and all(
        abs(g - SLOW_HEARTBEAT) <= STEP for g in paths.gaps(1, promoted_at)
    )
    # fastdp, more preferred than the carrier, is not on standby: it keeps probing
    assert not paths.probed(0).standby
    assert all(abs(g - SLOW_HEARTBEAT) <= STEP for g in paths.gaps(0, 22.0))
    paths.working = {0, 1}
    paths.run_until(paths.now + SLOW_HEARTBEAT + STEP)
    assert paths.conn.using == "fastdp" and paths.probed(1).standby


def test_a_promoted_standby_with_a_dead_path_gives_way_within_the_grace() -> None:
    paths = Paths()
    paths.run_until(20.0)
    paths.working = set()  # both paths break at once
    paths.run_until(20.0 + ACK_TIMEOUT + PROMOTION_GRACE + 2 * STEP)
    assert not paths.probed(0).healthy and not paths.probed(1).healthy


def test_a_peer_that_is_not_heard_at_all_keeps_its_carrier() -> None:
    paths = Paths()
    paths.run_until(5.0)
    assert paths.conn.using == "fastdp"
    paths.working, paths.peer_alive = set(), False  # starved: no ack, no other message
    paths.run_until(5.0 + 3 * STANDBY_ACK_TIMEOUT)
    assert paths.conn.using == "fastdp" and paths.probed(0).healthy
    paths.peer_alive = True  # it talks again, fastdp's acks still missing: its path's fault
    paths.working = {1}
    paths.run_until(paths.now + PROBE_INTERVAL_MAX + 2 * STEP)
    assert not paths.probed(0).healthy
    paths.run_until(paths.now + PROMOTION_GRACE + 2 * STEP)
    assert paths.conn.using == FAST_SLEEVE
