"""The datapath fed arbitrary datagrams: nothing escapes, every bad packet is counted,
and a working pair keeps carrying frames afterwards."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_datapath import ADDR_A, MAC_A, _arp_request, _pair, _routes

A_NAME = 0x0A0000000001


def _packet_from_a(rest: bytes) -> bytes:
    return A_NAME.to_bytes(6, "big") + rest


@settings(deadline=None, max_examples=200)
@given(
    packets=st.lists(
        st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(_packet_from_a)),
        max_size=20,
    ),
    encrypted=st.booleans(),
)
def test_random_datagrams_are_dropped_and_traffic_keeps_flowing(
    packets: list[bytes], encrypted: bool
) -> None:
    pair = _pair(encrypted)
    for packet in packets:
        pair.b.udp_received(packet, ADDR_A, _routes(pair.b.ourself), pair.now)
    pair.b.take_inject()  # a random plain packet may well hold a valid frame record
    stats = pair.b.counters
    if encrypted:  # nothing forged gets through NaCl
        assert stats.dropped_packets + stats.replayed_packets >= len(packets)
    arp = _arp_request(MAC_A)
    pair.a.frame_captured(arp, _routes(pair.a.ourself), pair.now)
    pair.pump()
    assert arp in pair.b.take_inject()
