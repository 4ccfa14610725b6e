"""The sleeve forwarder state machine, two ends wired back to back (no sockets)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from weavenet.core.overlay.sleeve import (
    CONNECTION_ESTABLISHED,
    FAST_HEARTBEAT_MAX,
    HEARTBEAT_TIMEOUT,
    MIN_MTU,
    OVERLAY_CONTROL_TAG,
    PMTU_VERIFIED,
    SLOW_HEARTBEAT,
    SleeveConnection,
)
from weavenet.core.overlay.sleeve_codec import classify_special, overhead_df

A, B = 0xAABBCCDDEEFF, 0x020000000001
UID = 0x1122334455667788


@dataclass
class Link:
    """Carries datagrams and control messages between two forwarders."""

    a: SleeveConnection
    b: SleeveConnection
    now: float = 0.0
    path_limit: int = 65535  # the largest frame the "network" carries on the DF path
    kernel_pmtu: int = 1500

    def pump(self) -> None:
        for _ in range(100):
            moved = self._move(self.a, self.b, ("10.0.0.1", 6783))
            moved |= self._move(self.b, self.a, ("10.0.0.2", 6783))
            if not moved:
                return

    def _move(self, src: SleeveConnection, dst: SleeveConnection, addr: tuple[str, int]) -> bool:
        moved = False
        for tag, payload in src.take_control_messages():
            dst.control_message(tag, payload, self.now)
            moved = True
        for dgram in src.take_datagrams():
            moved = True
            (record,) = dgram.records
            if dgram.df and len(record.frame) == 60000:
                src.send_failed(self.kernel_pmtu, self.now)  # EMSGSIZE for the probe
                continue
            if dgram.df and len(record.frame) > self.path_limit:
                continue  # silently lost on the path
            special = classify_special(record.frame)
            assert special is not None
            dst.special_frame(special, addr, self.now)
        return moved

    def advance(self, seconds: float, step: float = 0.005) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            self.a.tick(self.now)
            self.b.tick(self.now)
            self.pump()


def pair(
    compat: bool = False, encrypted: bool = False, path_limit: int = 65535, kernel_pmtu: int = 1500
) -> Link:
    index = None if compat else 0
    a = SleeveConnection(A, B, UID, encrypted, ("10.0.0.2", 6783), index)  # outbound
    b = SleeveConnection(B, A, UID, encrypted, None, index)  # inbound: learns the address
    link = Link(a, b, path_limit=path_limit, kernel_pmtu=kernel_pmtu)
    a.confirm(0.0)
    b.confirm(0.0)
    link.pump()
    return link


@pytest.mark.parametrize("compat", [False, True])
def test_heartbeats_establish_both_ends(compat: bool) -> None:
    link = pair(compat)
    assert link.a.established and link.b.established
    assert link.b.remote_addr == ("10.0.0.1", 6783)


def test_control_messages_are_wrapped_unless_compat() -> None:
    a = SleeveConnection(A, B, UID, False, None, 1)
    a.confirm(0.0)
    from weavenet.core.overlay.sleeve_codec import Special

    a.special_frame(Special("heartbeat", conn_uid=UID), ("10.0.0.2", 6783), 0.0)
    assert a.take_control_messages() == [(OVERLAY_CONTROL_TAG, bytes([1, CONNECTION_ESTABLISHED]))]
    c = SleeveConnection(A, B, UID, False, None, None)
    c.confirm(0.0)
    c.special_frame(Special("heartbeat", conn_uid=UID), ("10.0.0.2", 6783), 0.0)
    assert c.take_control_messages() == [(CONNECTION_ESTABLISHED, b"")]


def test_heartbeat_with_another_uid_is_ignored() -> None:
    from weavenet.core.overlay.sleeve_codec import Special

    b = SleeveConnection(B, A, UID, False, None, 0)
    b.confirm(0.0)
    b.special_frame(Special("heartbeat", conn_uid=UID + 1), ("10.0.0.9", 1), 0.0)
    assert b.remote_addr is None and b.take_control_messages() == []


@pytest.mark.parametrize(("encrypted", "expected"), [(False, 1438), (True, 1414)])
def test_pmtu_discovery_finds_the_kernel_limit(encrypted: bool, expected: int) -> None:
    link = pair(encrypted=encrypted)
    link.advance(3.0)
    assert link.a.mtu == link.b.mtu == expected == 1500 - overhead_df(encrypted)
    assert link.a.attrs() == {"name": "sleeve", "mtu": expected}


def test_pmtu_discovery_finds_a_smaller_path_limit() -> None:
    link = pair(path_limit=1000 + 14)  # frames above an MTU of 1000 are lost on the way
    link.advance(30.0)
    assert link.a.mtu == 1000
    assert link.a.frame_fits(bytes(1014)) and not link.a.frame_fits(bytes(1015))


def test_pmtu_below_the_floor_uses_the_floor() -> None:
    link = pair(kernel_pmtu=576)
    link.advance(1.0)
    assert link.a.mtu == MIN_MTU


def test_fragmentation_test_is_acknowledged() -> None:
    link = pair()
    link.advance(0.1)
    assert link.a.stack_frag and link.b.stack_frag


def test_heartbeats_slow_down_once_established() -> None:
    link = pair()
    link.advance(1.0)
    sent = []
    for _ in range(1, 40):
        link.now += 1.0
        link.a.tick(link.now)
        sent += [d for d in link.a.take_datagrams() if len(d.records[0].frame) == 22]
    assert 3 <= len(sent) <= 5  # one every SLOW_HEARTBEAT seconds
    assert SLOW_HEARTBEAT == 10.0


def test_silence_is_fatal_after_the_timeout() -> None:
    link = pair()
    link.a.tick(HEARTBEAT_TIMEOUT - 1)
    assert link.a.error is None
    link.a.tick(HEARTBEAT_TIMEOUT + 1)
    assert link.a.error is not None and "heartbeat" in link.a.error


def test_mtu_verified_for_another_candidate_is_ignored() -> None:
    link = pair()
    link.a.control_message(
        OVERLAY_CONTROL_TAG, bytes([0, PMTU_VERIFIED]) + (9000).to_bytes(2, "big"), 0
    )
    assert link.a.mtu in (0, 1438)


def _kinds(conn: SleeveConnection) -> list[str]:
    return [d.kind for d in conn.take_datagrams()]


def _established_pair(deferred: bool) -> Link:
    index = 1
    a = SleeveConnection(A, B, UID, False, ("10.0.0.2", 6783), index)
    b = SleeveConnection(B, A, UID, False, None, index)
    a.discovery_deferred = b.discovery_deferred = deferred
    link = Link(a, b)
    a.confirm(0.0)
    b.confirm(0.0)
    # carry a's first heartbeat and b's ack by hand, to look at what a sends next
    special = classify_special(a.take_datagrams()[0].records[0].frame)
    assert special is not None
    b.special_frame(special, ("10.0.0.1", 6783), 0.0)
    for tag, payload in b.take_control_messages():
        a.control_message(tag, payload, 0.0)
    return link


def test_a_sleeve_alone_tests_the_path_as_soon_as_established() -> None:
    link = _established_pair(deferred=False)
    assert link.a.established and link.a.discovering
    assert {"fragtest", "pmtu probe"} <= set(_kinds(link.a))


def test_a_sleeve_behind_a_faster_overlay_defers_the_path_tests() -> None:
    link = _established_pair(deferred=True)
    assert link.a.established and not link.a.discovering
    assert _kinds(link.a) == []
    for second in range(1, 400):  # not even the 5-minute fragmentation test
        link.a.tick(float(second))
        assert set(_kinds(link.a)) <= {"heartbeat"}
    assert link.a.mtu == 0 and not link.a.stack_frag


def test_a_deferred_sleeve_tests_the_path_once_needed() -> None:
    link = _established_pair(deferred=True)
    link.a.need_path(5.0)
    assert link.a.discovering
    assert {"fragtest", "pmtu probe"} <= set(_kinds(link.a))
    link.a.need_path(6.0)  # once only
    assert _kinds(link.a) == []


def test_a_path_needed_before_establishment_is_tested_on_establishment() -> None:
    a = SleeveConnection(A, B, UID, False, ("10.0.0.2", 6783), 1)
    a.discovery_deferred = True
    a.confirm(0.0)
    a.need_path(0.1)
    assert not a.discovering
    a.control_message(OVERLAY_CONTROL_TAG, bytes([1, CONNECTION_ESTABLISHED]), 0.2)
    assert a.discovering and "fragtest" in _kinds(a)


def test_a_deferred_pair_finds_the_mtu_once_needed() -> None:
    a = SleeveConnection(A, B, UID, False, ("10.0.0.2", 6783), 0)
    b = SleeveConnection(B, A, UID, False, None, 0)
    a.discovery_deferred = b.discovery_deferred = True
    link = Link(a, b)
    a.confirm(0.0)
    b.confirm(0.0)
    link.advance(3.0)
    assert a.established and a.mtu == 0
    a.need_path(link.now)
    link.advance(3.0)
    assert a.mtu == 1438 and a.stack_frag


def test_an_unconfirmed_connection_is_inactive_and_has_no_timers() -> None:
    conn = SleeveConnection(A, B, UID, False, ("10.0.0.2", 6783), 0)
    assert not conn.active and conn.tick(1.0) == float("inf")
    assert conn.take_datagrams() == []


def test_unanswered_heartbeats_back_off_until_the_peer_answers() -> None:
    a = SleeveConnection(A, B, UID, False, ("10.0.0.2", 6783), 0)  # the peer never answers
    a.confirm(0.0)
    beats, now = [], 0.0
    while now < 9.0:
        a.tick(now)
        beats += [now for d in a.take_datagrams() if len(d.records[0].frame) == 22]
        now = round(now + 0.05, 6)
    assert beats == [0.0, 0.5, 1.5, 3.5, 5.5, 7.5]  # 0.5 s, doubling to FAST_HEARTBEAT_MAX
    assert FAST_HEARTBEAT_MAX == 2.0
    assert not a.established
