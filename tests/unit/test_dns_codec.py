"""gob vectors of the nameserver channel (weave-wire.md Appendix A.10), both directions."""

from __future__ import annotations

import pytest

from weavenet.core.dns.codec import DnsGossipData, DnsGossipError, decode_gossip, encode_gossip
from weavenet.core.dns.entries import Entry
from weavenet.core.errors import RemoteProtocolError

ORIGIN = 0xAABBCCDDEEFF
A10 = bytes.fromhex(
    "33ff810301010a476f737369704461746101ff82000102010954696d657374616d700104000107456e74726965"
    "7301ff86000000"
    "16ff8502010107456e747269657301ff860001ff840000"
    "5eff8303010105456e74727901ff84000106010b436f6e7461696e65724944010c0001064f726967696e010600"
    "0104416464720106000108486f73746e616d65010c00010756657273696f6e0104000109546f6d6273746f6e65"
    "0104000000"
    "62ff8201fcbebc2000010201046465616401faaabbccddeeff01fc0a200006010f64622e77656176652e6c6f63"
    "616c2e010201fcbebc200200010663306666656501faaabbccddeeff01fc0a20000501107765622e7765617665"
    "2e6c6f63616c2e0000"
)
WEB = Entry("c0ffee", ORIGIN, 0x0A200005, "web.weave.local.", 0, 0)
DB = Entry("dead", ORIGIN, 0x0A200006, "db.weave.local.", 1, 1600000001)


def test_encode_gives_gos_bytes_whatever_the_input_order() -> None:
    assert encode_gossip(1600000000, [WEB, DB]) == A10
    assert encode_gossip(1600000000, [DB, WEB]) == A10


def test_decode_of_gos_bytes() -> None:
    assert decode_gossip(A10) == (1600000000, [DB, WEB])


def test_gossip_data_encode_and_merge() -> None:
    newer_db = Entry("dead", ORIGIN, 0x0A200006, "db.weave.local.", 2, 0)
    a = DnsGossipData(1600000000, (WEB, DB))
    b = DnsGossipData(1600000005, (newer_db,))
    merged = a.merge(b)
    assert merged.timestamp == 1600000005
    assert merged.entries == (newer_db, WEB)
    assert a.encode() == [A10]


def test_case_sensitive_wire_order() -> None:
    upper = Entry("c", ORIGIN, 1, "Web.weave.local.")
    lower = Entry("c", ORIGIN, 1, "a.weave.local.")
    _, entries = decode_gossip(encode_gossip(1, [lower, upper]))
    assert entries == [lower, upper]  # storage order is case-insensitive: a < web
    assert encode_gossip(1, [lower, upper]).index(b"Web") < encode_gossip(1, [lower, upper]).index(
        b"a.weave"
    )  # Go's wire order is case-sensitive: 'W' < 'a'


def test_duplicates_are_refused_as_go_would_panic_on_them() -> None:
    with pytest.raises(DnsGossipError, match="duplicate entry"):
        decode_gossip(encode_gossip(1, [WEB, Entry("c0ffee", ORIGIN, 0x0A200005, WEB.hostname, 5)]))


def test_address_wider_than_32_bits_is_refused() -> None:
    with pytest.raises(DnsGossipError, match="32 bits"):
        decode_gossip(encode_gossip(1, [Entry("c", ORIGIN, 1 << 32, "x.weave.local.")]))


@pytest.mark.parametrize("cut", [0, 1, 20, 60, len(A10) - 1])
def test_truncated_payloads_raise_our_protocol_error(cut: int) -> None:
    with pytest.raises(DnsGossipError) as info:
        decode_gossip(A10[:cut])
    assert isinstance(info.value, RemoteProtocolError)
