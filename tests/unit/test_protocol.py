"""Protocol message tags (§3.8) and gossip headers (§4.1, vectors A.4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.mesh.protocol import (
    GossipMessage,
    Tag,
    decode_gossip,
    encode_gossip,
    encode_message,
    split_message,
)
from weavenet.core.wire.gob import BYTES, STRING, UINT, Encoder, GobError

A = 0xAABBCCDDEEFF
B = 0x020000000001
BROADCAST_PAYLOAD = bytes.fromhex("0b0c0008746f706f6c6f6779090600faaabbccddeeff060a0003010203")
UNICAST_PAYLOAD = bytes.fromhex(
    "0f0c000c4950616c6c6f636174696f6e090600faaabbccddeeff090600fa020000000001050a0002dead"
)
# The gossip header of the A.2 capture's first topology message (tag 4), data elided.
CAPTURE_GOSSIP_HEADER = bytes.fromhex("0b0c0008746f706f6c6f6779090600faaabbccddeeff")


def test_tag_values() -> None:
    assert {t.name: int(t) for t in Tag} == {
        "HEARTBEAT": 0,
        "RESERVED1": 1,
        "RESERVED2": 2,
        "RESERVED3": 3,
        "GOSSIP": 4,
        "GOSSIP_UNICAST": 5,
        "GOSSIP_BROADCAST": 6,
        "OVERLAY_CONTROL": 7,
    }


def test_broadcast_vector_both_ways() -> None:
    msg = GossipMessage(channel="topology", src=A, dst=None, data=b"\x01\x02\x03")
    assert encode_gossip(Tag.GOSSIP_BROADCAST, msg) == BROADCAST_PAYLOAD
    assert decode_gossip(Tag.GOSSIP_BROADCAST, BROADCAST_PAYLOAD) == msg


def test_gossip_tag_4_uses_the_same_layout() -> None:
    msg = GossipMessage(channel="topology", src=A, dst=None, data=b"\x01\x02\x03")
    assert encode_gossip(Tag.GOSSIP, msg) == BROADCAST_PAYLOAD
    assert decode_gossip(Tag.GOSSIP, BROADCAST_PAYLOAD) == msg


def test_unicast_vector_both_ways() -> None:
    msg = GossipMessage(channel="IPallocation", src=A, dst=B, data=b"\xde\xad")
    assert encode_gossip(Tag.GOSSIP_UNICAST, msg) == UNICAST_PAYLOAD
    assert decode_gossip(Tag.GOSSIP_UNICAST, UNICAST_PAYLOAD) == msg


def test_capture_gossip_header_prefix() -> None:
    msg = GossipMessage(channel="topology", src=A, dst=None, data=b"x" * 313)
    payload = encode_gossip(Tag.GOSSIP, msg)
    assert payload.startswith(CAPTURE_GOSSIP_HEADER + bytes.fromhex("fe013e0a00fe0139"))
    assert decode_gossip(Tag.GOSSIP, payload).data == b"x" * 313


def test_empty_channel_data_and_zero_name() -> None:
    msg = GossipMessage(channel="", src=0, dst=None, data=b"")
    assert decode_gossip(Tag.GOSSIP, encode_gossip(Tag.GOSSIP, msg)) == msg


def test_trailing_values_are_ignored_like_go() -> None:
    extra = Encoder().encode(STRING, "junk")
    assert decode_gossip(Tag.GOSSIP_BROADCAST, BROADCAST_PAYLOAD + extra).data == b"\x01\x02\x03"


def test_unicast_without_destination_is_rejected() -> None:
    with pytest.raises(GobError) as info:
        decode_gossip(Tag.GOSSIP_UNICAST, BROADCAST_PAYLOAD)
    assert isinstance(info.value, RemoteProtocolError)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00",
        bytes.fromhex("0b0c0008746f706f6c6f6779"),  # channel only
        bytes.fromhex("0b0c0008746f706f6c6f6779090600faaabbccddeeff"),  # no data
        bytes.fromhex("0b0c0008746f706f6c6f67"),  # truncated string
        bytes.fromhex("ff"),
    ],
)
def test_truncated_or_garbage_payloads(payload: bytes) -> None:
    for tag in (Tag.GOSSIP, Tag.GOSSIP_UNICAST, Tag.GOSSIP_BROADCAST):
        with pytest.raises(RemoteProtocolError):
            decode_gossip(tag, payload)


def test_wrong_value_types_are_rejected() -> None:
    enc = Encoder()
    payload = enc.encode(UINT, 5) + enc.encode(UINT, A) + enc.encode(BYTES, b"")
    with pytest.raises(GobError):
        decode_gossip(Tag.GOSSIP, payload)


def test_encode_gossip_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        encode_gossip(Tag.HEARTBEAT, GossipMessage("c", A, None, b""))
    with pytest.raises(LocalProtocolError):
        encode_gossip(Tag.GOSSIP_UNICAST, GossipMessage("c", A, None, b""))
    with pytest.raises(LocalProtocolError):
        encode_gossip(Tag.GOSSIP, GossipMessage("c", A, B, b""))
    with pytest.raises(LocalProtocolError):
        encode_gossip(Tag.GOSSIP, GossipMessage("c", -1, None, b""))
    with pytest.raises(LocalProtocolError):
        decode_gossip(Tag.OVERLAY_CONTROL, BROADCAST_PAYLOAD)


def test_encode_and_split_message() -> None:
    assert encode_message(Tag.HEARTBEAT) == b"\x00"
    body = encode_message(Tag.GOSSIP_BROADCAST, BROADCAST_PAYLOAD)
    assert body == b"\x06" + BROADCAST_PAYLOAD
    assert split_message(body) == (6, BROADCAST_PAYLOAD)
    assert split_message(b"\x00") == (0, b"")
    assert split_message(b"\xff\x01") == (255, b"\x01")  # unknown tags are the caller's call
    assert split_message(b"") is None
    with pytest.raises(LocalProtocolError):
        encode_message(256, b"")


@settings(deadline=None, max_examples=200)
@given(
    st.sampled_from([Tag.GOSSIP, Tag.GOSSIP_UNICAST, Tag.GOSSIP_BROADCAST]),
    st.text(max_size=300),
    st.integers(0, (1 << 64) - 1),
    st.integers(0, (1 << 64) - 1),
    st.binary(max_size=300),
)
def test_direct_header_coding_matches_the_generic_gob_codec(
    tag: Tag, channel: str, src: int, dst: int, data: bytes
) -> None:
    unicast = tag == Tag.GOSSIP_UNICAST
    msg = GossipMessage(channel, src, dst if unicast else None, data)
    enc = Encoder()
    parts = [enc.encode(STRING, channel), enc.encode(UINT, src)]
    if unicast:
        parts.append(enc.encode(UINT, dst))
    parts.append(enc.encode(BYTES, data))
    generic = b"".join(parts)
    assert encode_gossip(tag, msg) == generic
    assert decode_gossip(tag, generic) == msg
