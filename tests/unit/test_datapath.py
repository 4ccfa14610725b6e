"""Two userspace datapaths wired back to back: heartbeats establish the sleeve, frames
cross it (plain and sealed), replays are refused, oversized DF frames get an ICMP."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.mesh.routes import Routes
from weavenet.core.overlay.datapath import Datapath
from weavenet.core.overlay.ipv4 import internet_checksum
from weavenet.core.overlay.sleeve_overlay import SleeveOverlay

A, B = 0x0A0000000001, 0x0B0000000002
ADDR_A, ADDR_B = ("10.0.0.1", 6783), ("10.0.0.2", 6783)
MAC_A, MAC_B = bytes.fromhex("0aa000000001"), bytes.fromhex("0eb000000002")
KEY = bytes(range(32))


def _routes(us: int) -> Routes:
    return Routes(us, {A: {B: True}, B: {A: True}})


@dataclass
class Pair:
    a: Datapath
    b: Datapath
    now: float = 0.0
    kernel_pmtu: int = 1500
    captured_udp: list[bytes] | None = None

    def pump(self) -> None:
        for _ in range(50):
            moved = self._deliver(self.a, self.b, ADDR_A) | self._deliver(self.b, self.a, ADDR_B)
            moved |= self._control(self.a, self.b) | self._control(self.b, self.a)
            if not moved:
                return

    def _deliver(self, src: Datapath, dst: Datapath, addr: tuple[str, int]) -> bool:
        sends = src.take_udp()
        for send in sends:
            if send.df and len(send.payload) > self.kernel_pmtu - 28:
                src.send_failed(send.peer, self.kernel_pmtu, self.now)
                continue
            if self.captured_udp is not None:
                self.captured_udp.append(send.payload)
            dst.udp_received(send.payload, addr, _routes(dst.ourself), self.now)
        return bool(sends)

    @staticmethod
    def _control(src: Datapath, dst: Datapath) -> bool:
        moved = False
        for conn in src.overlay.connections.values():
            for tag, payload in conn.take_control_messages():
                dst.overlay.connections[src.ourself].control_message(tag, payload, 0.0)
                moved = True
        src.changed.clear()
        return moved

    def advance(self, seconds: float, step: float = 0.01) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now += step
            for dp in (self.a, self.b):
                for conn in dp.overlay.connections.values():
                    conn.tick(self.now)
            self.pump()


def _pair(encrypted: bool, deferred: bool = False) -> Pair:
    """Two datapaths with a sleeve between them; ``deferred``: the sleeves back up a
    faster overlay, so their path tests wait."""
    key = KEY if encrypted else None
    dps = []
    for us, them, outbound, remote in (
        (A, B, True, "10.0.0.2:6783"),
        (B, A, False, "10.0.0.1:5555"),
    ):
        overlay = SleeveOverlay(us)
        params = OverlayParams(them, us, outbound, 77, "x", remote, key, ("sleeve",))
        conn = overlay.prepare_connection(params)
        conn.discovery_deferred = deferred
        conn.confirm(0.0)
        dps.append(Datapath.create(us, overlay))
    pair = Pair(dps[0], dps[1])
    pair.advance(2.0)
    return pair


def _arp_request(src_mac: bytes) -> bytes:
    return b"\xff" * 6 + src_mac + b"\x08\x06" + bytes(28)


def _ipv4(dst_mac: bytes, src_mac: bytes, size: int, df: bool, marker: bytes = b"") -> bytes:
    total = 20 + 8 + size
    header = bytearray(
        bytes([0x45, 0, total >> 8, total & 0xFF, 0, 1, 0x40 if df else 0, 0, 64, 17, 0, 0])
        + bytes([10, 2, 1, 1, 10, 2, 1, 2])
    )
    header[10:12] = internet_checksum(header).to_bytes(2, "big")
    payload = (marker * (size // max(1, len(marker)) + 1))[:size] if marker else bytes(size)
    return dst_mac + src_mac + b"\x08\x00" + bytes(header) + bytes(8) + payload


@pytest.mark.parametrize("encrypted", [False, True])
def test_sleeve_establishes_and_discovers_the_mtu(encrypted: bool) -> None:
    pair = _pair(encrypted)
    for dp in (pair.a, pair.b):
        (conn,) = dp.overlay.connections.values()
        assert conn.established
        assert conn.mtu == (1414 if encrypted else 1438)


@pytest.mark.parametrize("encrypted", [False, True])
def test_broadcast_and_unicast_cross(encrypted: bool) -> None:
    pair = _pair(encrypted)
    arp = _arp_request(MAC_A)
    pair.a.frame_captured(arp, _routes(A), pair.now)
    pair.pump()
    assert pair.b.take_inject() == [arp]
    reply = MAC_A + MAC_B + b"\x08\x06" + bytes(28)
    pair.b.frame_captured(reply, _routes(B), pair.now)  # MAC_A was learnt at A: unicast
    pair.pump()
    assert pair.a.take_inject() == [reply]


def test_encryption_hides_the_payload_and_replays_are_refused() -> None:
    pair = _pair(encrypted=True)
    pair.captured_udp = []
    frame = _ipv4(b"\xff" * 6, MAC_A, 200, df=False, marker=b"SECRET-MARKER")
    pair.a.frame_captured(frame, _routes(A), pair.now)
    pair.pump()
    assert pair.b.take_inject() == [frame]
    assert pair.captured_udp and all(b"SECRET-MARKER" not in p for p in pair.captured_udp)
    replayed = pair.captured_udp[-1]
    pair.b.udp_received(replayed, ADDR_A, _routes(B), pair.now)
    assert pair.b.take_inject() == []
    assert pair.b.counters.replayed_packets == 1


def test_oversized_df_frame_gets_icmp_frag_needed() -> None:
    pair = _pair(encrypted=False)
    pair.a.frame_captured(_arp_request(MAC_B + b""), _routes(A), pair.now)  # nothing learnt
    pair.b.frame_captured(_arp_request(MAC_B), _routes(B), pair.now)  # A learns MAC_B
    pair.pump()
    pair.a.take_inject()
    big = _ipv4(MAC_B, MAC_A, 3000, df=True)
    pair.a.frame_captured(big, _routes(A), pair.now)
    (icmp,) = pair.a.take_inject()
    assert icmp[:6] == MAC_A and icmp[23] == 1 and icmp[34:36] == b"\x03\x04"
    assert int.from_bytes(icmp[40:42], "big") == 1438  # next-hop MTU
    assert pair.a.counters.frames_too_big == 1


def test_big_non_df_frames_are_fragmented_to_the_path_mtu() -> None:
    pair = _pair(encrypted=False)
    big = _ipv4(b"\xff" * 6, MAC_A, 3000, df=False)
    pair.a.frame_captured(big, _routes(A), pair.now)
    pair.pump()
    injected = pair.b.take_inject()
    # either the peer takes IP fragments (one frame) or we fragmented it ourselves
    assert injected == [big] or (len(injected) > 1 and all(len(f) <= 1438 + 14 for f in injected))


def test_garbage_packets_are_dropped_and_counted() -> None:
    pair = _pair(encrypted=True)
    before = pair.b.counters.dropped_packets
    for junk in (b"", b"\x00", bytes(5), A.to_bytes(6, "big") + b"junk", bytes(100)):
        pair.b.udp_received(junk, ADDR_A, _routes(B), pair.now)
    assert pair.b.counters.dropped_packets == before + 5
    assert pair.b.take_inject() == []


def test_macs_expire_and_go_with_their_peer() -> None:
    from weavenet.core.overlay.mac_cache import MAC_MAX_AGE

    pair = _pair(encrypted=False)
    pair.b.frame_captured(_arp_request(MAC_B), _routes(B), pair.now)
    pair.pump()
    assert pair.a.forwarder.macs.lookup(MAC_B) == B
    assert pair.a.expire_macs(pair.now + 1) == 0
    assert pair.a.expire_macs(pair.now + MAC_MAX_AGE + 1) == 1
    assert pair.a.forwarder.macs.lookup(MAC_B) is None
    pair.b.frame_captured(_arp_request(MAC_B), _routes(B), pair.now)
    pair.pump()
    pair.a.forget_peer(B)
    assert pair.a.forwarder.macs.lookup(MAC_B) is None


def _switched_pair() -> Pair:
    """The datapath driven through the overlay switch (fastdp + sleeve), as the daemon does."""
    from weavenet.core.overlay.fastdp import FASTDP_OVERLAY, FastdpOverlay
    from weavenet.core.overlay.switch import OverlaySwitch

    dps, fastdps = [], []
    for us, them, outbound, remote in (
        (A, B, True, "10.0.0.2:6783"),
        (B, A, False, "10.0.0.1:5555"),
    ):
        sleeve = SleeveOverlay(us)
        fastdps.append(FastdpOverlay())
        switch = OverlaySwitch([fastdps[-1], sleeve], sleeve)
        params = OverlayParams(
            them, us, outbound, 77, "x", remote, None, (FASTDP_OVERLAY, "sleeve")
        )
        switch.prepare_connection(params).confirm(0.0)
        dps.append(Datapath.create(us, switch))
    pair = Pair(dps[0], dps[1])
    pair.advance(1.0)
    for src, dst in ((fastdps[0], fastdps[1]), (fastdps[1], fastdps[0])):
        for beat in src.take_heartbeats():  # what the kernel tunnel would carry
            dst.heartbeat_frame(beat.payload[8:], pair.now)
    pair.advance(1.0)  # the acks cross the control channel
    return pair


def test_through_the_switch_userspace_frames_take_the_sleeve_whoever_carries() -> None:
    pair = _switched_pair()
    (conn,) = pair.a.overlay.connections.values()  # type: ignore[attr-defined]
    assert conn.using == "fastdp"
    arp = _arp_request(MAC_A)
    pair.a.frame_captured(arp, _routes(A), pair.now)
    pair.pump()
    assert pair.b.take_inject() == [arp]  # a broadcast never goes to the VXLAN device


def test_a_deferred_sleeve_sends_only_heartbeats_until_a_big_frame_needs_it() -> None:
    pair = _pair(False, deferred=True)
    (conn,) = pair.a.overlay.connections.values()
    assert conn.established and conn.mtu == 0
    assert set(pair.a.counters.special_bytes) == {"heartbeat"}
    pair.a.frame_captured(_arp_request(MAC_A), _routes(A), pair.now)  # small: fits any path
    pair.pump()
    assert not conn.discovering and pair.b.take_inject()
    frame = _ipv4(MAC_B, MAC_A, 1000, df=True)
    pair.a.frame_captured(frame, _routes(A), pair.now)
    assert conn.discovering and B in pair.a.changed  # the mesh must run its timers now
    pair.advance(2.0)
    assert conn.mtu == 1438 and conn.stack_frag
    assert {"fragtest", "pmtu probe", "mtutest"} <= set(pair.a.counters.special_bytes)
    assert pair.a.stats()["sleeve_fragtest_bytes"] > 60000


def test_a_frame_queued_right_after_the_connection_is_replaced_is_sent() -> None:
    pair = _pair(False)
    pair.a.frame_captured(_arp_request(MAC_A), _routes(A), pair.now)
    assert pair.a.take_udp()  # the old connection's batcher exists now
    overlay = pair.a.overlay
    assert isinstance(overlay, SleeveOverlay)
    params = OverlayParams(B, A, True, 78, "x", "10.0.0.2:6783", None, ("sleeve",))
    conn = overlay.prepare_connection(params)  # the mesh reconnected: a new forwarder
    conn.confirm(pair.now)
    conn.control_message(7, bytes((0, 1)), pair.now)  # ConnectionEstablished
    pair.a.frame_captured(_arp_request(MAC_A), _routes(A), pair.now)  # before any send
    sends = pair.a.take_udp()  # the ARP, then the new forwarder's heartbeat and tests
    assert 6 + 12 + 2 + 42 in [len(s.payload) for s in sends]
