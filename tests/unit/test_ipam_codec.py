"""IPAM gob codec against the Go vectors of spec A.8/A.9, and the nil-versus-empty rules."""

from __future__ import annotations

import pytest

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.ipam.address import CIDR, Range, parse_address
from weavenet.core.ipam.codec import (
    OWNED_DATA,
    IpamCodecError,
    IpamGossip,
    RingUpdate,
    SpaceRequest,
    SpaceRequestDenied,
    decode_gossip,
    decode_owned,
    decode_owned_data,
    decode_peer_name,
    decode_range,
    decode_ring,
    decode_unicast,
    encode_gossip,
    encode_owned,
    encode_owned_data,
    encode_peer_name,
    encode_range,
    encode_ring,
    encode_unicast,
)
from weavenet.core.ipam.paxos import AcceptedValue, NodeClaims, NodeID, ProposalID
from weavenet.core.ipam.ring import Entry, Ring
from weavenet.core.peername import parse_peer_name
from weavenet.core.wire.gob import encode_value

HOST_A = parse_peer_name("aa:bb:cc:dd:ee:ff")
HOST_B = parse_peer_name("02:00:00:00:00:01")


def _stream(text: str) -> bytes:
    """A spec vector: the gob messages of one stream, concatenated."""
    return bytes.fromhex(text)


A8_GOSSIP = _stream(
    "45ff810301010b676f73736970537461746501ff8200010401034e6f7701040001094e69636b6e616d65"
    "7301ff840001055061786f7301ff9000010452696e6701ff92000000"
    "28ff83040101186d61705b6d6573682e506565724e616d655d737472696e6701ff84000106010c0000"
    "1dff8f0401010b476f73736970537461746501ff900001ff8601ff880000"
    "1dff85030102ff8600010201044e616d6501060001035549440106000000"
    "38ff87030102ff88000103010750726f6d69736501ff8a000108416363657074656401ff8a00010b4163"
    "63657074656456616c01ff8c000000"
    "30ff890301010a50726f706f73616c494401ff8a0001020105526f756e64010600010850726f706f7365"
    "7201ff86000000"
    "32ff8b0301010d416363657074656456616c756501ff8c000102010556616c756501ff8e0001064f7269"
    "67696e01ff8a000000"
    "13ff8d0201010556616c756501ff8e0001060000"
    "45ff910301010452696e6701ff92000105010553746172740106000103456e6401060001045065657201"
    "06000107456e747269657301ff96000105536565647301ff98000000"
    "16ff9502010107656e747269657301ff960001ff940000"
    "34ff93030102ff940001040105546f6b656e010600010450656572010600010756657273696f6e010600"
    "0104467265650106000000"
    "1dff970201010f5b5d6d6573682e506565724e616d6501ff980001060000"
    "68ff8201fcbebc20000101faaabbccddeeff05686f7374410201fc0a20000001fc0a30000001faaabbcc"
    "ddeeff010201fc0a20000001fa02000000000102fd0800000001fc0a28000001faaabbccddeeff02fd08"
    "0000000102fa020000000001faaabbccddeeff0000"
)

A9_GOSSIP = _stream(
    "0eff8d040102ff8e000106010c0000"
    "37ff93030101014501ff940001040105546f6b656e010600010450656572010600010756657273696f6e"
    "0106000104467265650106000000"
    "0dff91020102ff920001ff940000"
    "0cff95020102ff960001060000"
    "42ff8f030101015201ff90000105010553746172740106000103456e6401060001045065657201060001"
    "07456e747269657301ff92000105536565647301ff96000000"
    "31ff8b03010102475301ff8c00010301034e6f7701040001094e69636b6e616d657301ff8e0001045269"
    "6e6701ff90000000"
    "68ff8c01fcbebc20000101faaabbccddeeff05686f7374410101fc0a20000001fc0a30000001faaabbcc"
    "ddeeff010201fc0a20000001fa02000000000102fd0800000001fc0a28000001faaabbccddeeff02fd08"
    "0000000102fa020000000001faaabbccddeeff0000"
)

A8_SPACE_REQUEST = bytes.fromhex(
    "0025ff990301010552616e676501ff9a000102010553746172740106000103456e64010600000"
    "00fff9a01fc0a20000001fc0a20010000"
)


def a8_ring() -> Ring:
    universe = CIDR.parse("10.32.0.0/12").range()
    ring = Ring.new(universe.start, universe.end, HOST_A)
    ring.claim_for_peers([HOST_B, HOST_A])
    return ring


def a8_state() -> IpamGossip:
    return IpamGossip(1600000000, {HOST_A: "hostA"}, None, a8_ring())


def test_a8_gossip_decodes() -> None:
    state = decode_gossip(A8_GOSSIP)
    assert state.now == 1600000000
    assert state.nicknames == {HOST_A: "hostA"}
    assert state.paxos is None
    assert state.ring is not None
    assert state.ring.peer == HOST_A
    assert state.ring.seeds == [HOST_B, HOST_A]
    assert state.ring.entries == [
        Entry(parse_address("10.32.0.0"), HOST_B, 0, 524288),
        Entry(parse_address("10.40.0.0"), HOST_A, 0, 524288),
    ]
    assert state.ring.canonical() == a8_ring().canonical()


def test_a8_gossip_encodes_byte_for_byte() -> None:
    assert encode_gossip(a8_state()) == A8_GOSSIP


def test_a9_decodes_to_the_same_ring() -> None:
    a9, a8 = decode_gossip(A9_GOSSIP), decode_gossip(A8_GOSSIP)
    assert a9.ring is not None and a8.ring is not None
    assert a9.ring == a8.ring
    assert (a9.now, a9.nicknames, a9.paxos) == (a8.now, a8.nicknames, a8.paxos)


def test_space_request_vector() -> None:
    msg = decode_unicast(A8_SPACE_REQUEST)
    assert msg == SpaceRequest(CIDR.parse("10.32.0.0/24").range())
    assert encode_unicast(msg) == A8_SPACE_REQUEST
    assert encode_range(msg.range) == A8_SPACE_REQUEST[1:]
    assert decode_range(A8_SPACE_REQUEST[1:]) == msg.range


def test_unicast_kinds() -> None:
    r = Range(parse_address("10.32.0.5"), parse_address("10.32.0.6"))
    denied = encode_unicast(SpaceRequestDenied(r))
    assert denied[0] == 2 and denied[1:] == encode_range(r)
    assert decode_unicast(denied) == SpaceRequestDenied(r)
    update = encode_unicast(RingUpdate(a8_state()))
    assert update == b"\x01" + A8_GOSSIP
    decoded = decode_unicast(update)
    assert isinstance(decoded, RingUpdate) and decoded.state.ring == a8_ring()


@pytest.mark.parametrize("data", [b"", b"\x03" + A8_SPACE_REQUEST[1:], b"\x00", b"\x01\x00"])
def test_bad_unicasts(data: bytes) -> None:
    with pytest.raises(IpamCodecError):
        decode_unicast(data)


def test_paxos_absent_empty_and_full_are_distinct() -> None:
    absent = IpamGossip(5, {HOST_A: "a"}, None, None)
    empty = IpamGossip(5, {HOST_A: "a"}, {}, None)
    node = NodeID(HOST_A, 77)
    proposal = ProposalID(3, NodeID(HOST_B, 9))
    full = IpamGossip(
        5,
        {HOST_A: "a"},
        {node: NodeClaims(proposal, proposal, AcceptedValue((HOST_A, HOST_B), proposal))},
        None,
    )
    encoded = [encode_gossip(s) for s in (absent, empty, full)]
    assert len(set(encoded)) == 3
    assert [decode_gossip(e) for e in encoded] == [absent, empty, full]
    # the value message: Now, Nicknames, then (empty) Paxos as a zero count
    assert encoded[1].endswith(b"\x01\x00\x00") and not encoded[0].endswith(b"\x01\x00\x00")


def test_zero_claims_round_trip() -> None:
    zero = ProposalID(0, NodeID(0, 0))
    claims = NodeClaims(zero, zero, AcceptedValue((), zero))
    state = IpamGossip(0, {}, {NodeID(HOST_A, 1): claims}, None)
    assert decode_gossip(encode_gossip(state)) == state


def test_empty_state_is_a_ring_request() -> None:
    state = IpamGossip(0, {}, None, None)
    decoded = decode_gossip(encode_gossip(state))
    assert decoded == state


def test_persisted_ring_round_trip() -> None:
    ring = a8_ring()
    ring.grant_range_to_host(parse_address("10.44.0.0"), parse_address("10.48.0.0"), HOST_B)
    assert decode_ring(encode_ring(ring)) == ring
    empty = Ring.new(0, 256, HOST_A)
    assert decode_ring(encode_ring(empty)) == empty


def test_persisted_ring_must_be_valid() -> None:
    ring = a8_ring()
    ring.entries.reverse()
    with pytest.raises(IpamCodecError, match="Ring not sorted"):
        decode_ring(encode_ring(ring))


def test_owned_addresses_round_trip() -> None:
    owned = {
        "c0ffee": (True, [CIDR.parse("10.32.0.1/12"), CIDR.parse("10.32.0.2/12")]),
        "weave:expose": (False, [CIDR.parse("10.32.0.3/12")]),
        "none": (False, []),
    }
    assert decode_owned(encode_owned(owned)) == owned
    assert decode_owned(encode_owned({})) == {}
    data = encode_owned_data(True, [CIDR.parse("10.40.0.0/12")])
    assert decode_owned_data(data) == (True, [CIDR.parse("10.40.0.0/12")])


def test_owned_addresses_reject_bad_prefix() -> None:
    data = encode_value(OWNED_DATA, {"Cidrs": [{"Addr": 1, "PrefixLen": 40}]})
    with pytest.raises(IpamCodecError, match="prefix length 40"):
        decode_owned_data(data)


def test_peer_name_value() -> None:
    # a singleton uint: length 9, type id uint (int 3 = 06), field delta 0, the value
    assert encode_peer_name(HOST_A) == bytes.fromhex("090600faaabbccddeeff")
    assert decode_peer_name(encode_peer_name(HOST_A)) == HOST_A


def test_out_of_range_values_are_rejected() -> None:
    ring = a8_ring()
    ring.entries[0].free = 1 << 32  # does not fit Go's uint32 Count
    with pytest.raises(IpamCodecError, match="Free"):
        decode_gossip(encode_gossip(IpamGossip(0, {}, None, ring)))
    ring = a8_ring()
    ring.seeds = [1 << 50]
    with pytest.raises(IpamCodecError, match="48 bits"):
        decode_gossip(encode_gossip(IpamGossip(0, {}, None, ring)))


def test_errors_are_remote_protocol_errors() -> None:
    with pytest.raises(RemoteProtocolError):
        decode_gossip(A8_GOSSIP[:-3])
    with pytest.raises(IpamCodecError):
        decode_gossip(A8_SPACE_REQUEST[1:])  # a Range is not a gossipState


def test_trailing_bytes_are_ignored_as_go_does() -> None:
    assert decode_gossip(A8_GOSSIP + b"\x05junk") == decode_gossip(A8_GOSSIP)
