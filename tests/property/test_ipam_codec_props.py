"""IPAM codec properties: random rings, gossip states, unicasts and persisted values
round-trip; random bytes and mutated Go bytes (A.8) raise only IpamCodecError."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_ipam_codec import A8_GOSSIP, A8_SPACE_REQUEST, A9_GOSSIP
from weavenet.core.ipam.address import CIDR, Range
from weavenet.core.ipam.codec import (
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
    encode_ring,
    encode_unicast,
)
from weavenet.core.ipam.paxos import AcceptedValue, NodeClaims, NodeID, ProposalID
from weavenet.core.ipam.ring import Entry, Ring

U32 = st.integers(0, 0xFFFFFFFF)
NAMES = st.integers(0, (1 << 48) - 1)
U64 = st.integers(0, (1 << 64) - 1)

ENTRIES = st.lists(st.builds(Entry, U32, NAMES, U32, U32), max_size=8)
RINGS = st.builds(Ring, U32, U32, NAMES, ENTRIES, st.lists(NAMES, max_size=4))
NODES = st.builds(NodeID, NAMES, U64)
PROPOSALS = st.builds(ProposalID, U64, NODES)
CLAIMS = st.builds(
    NodeClaims,
    PROPOSALS,
    PROPOSALS,
    st.builds(AcceptedValue, st.lists(NAMES, max_size=4).map(tuple), PROPOSALS),
)
STATES = st.builds(
    IpamGossip,
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.dictionaries(NAMES, st.text(max_size=8), max_size=3),
    st.none() | st.dictionaries(NODES, CLAIMS, max_size=3),
    st.none() | RINGS,
)
RANGES = st.builds(Range, U32, U32)
CIDRS = st.builds(CIDR, U32, st.integers(0, 32))


@settings(max_examples=200, deadline=None)
@given(STATES)
def test_gossip_round_trip(state: IpamGossip) -> None:
    assert decode_gossip(encode_gossip(state)) == state
    assert decode_unicast(encode_unicast(RingUpdate(state))) == RingUpdate(state)


@settings(max_examples=200, deadline=None)
@given(RANGES)
def test_range_unicasts_round_trip(r: Range) -> None:
    assert decode_unicast(encode_unicast(SpaceRequest(r))) == SpaceRequest(r)
    assert decode_unicast(encode_unicast(SpaceRequestDenied(r))) == SpaceRequestDenied(r)


@settings(max_examples=100, deadline=None)
@given(RINGS)
def test_persisted_ring_round_trip_or_refused(ring: Ring) -> None:
    data = encode_ring(ring)
    if ring.invariant_error() is None:
        assert decode_ring(data) == ring
    else:
        try:
            decode_ring(data)
        except IpamCodecError:
            return
        raise AssertionError("an invalid persisted ring was accepted")


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=10), st.tuples(st.booleans(), st.lists(CIDRS, max_size=3))))
def test_owned_round_trip(owned: dict[str, tuple[bool, list[CIDR]]]) -> None:
    assert decode_owned(encode_owned(owned)) == owned


DECODERS = [
    decode_gossip,
    decode_range,
    decode_unicast,
    decode_ring,
    decode_owned,
    decode_owned_data,
    decode_peer_name,
]


def _only_codec_errors(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(IpamCodecError):
            decode(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_codec_errors(data: bytes) -> None:
    _only_codec_errors(data)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([A8_GOSSIP, A9_GOSSIP, A8_SPACE_REQUEST[1:]]),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 2000),
)
def test_mutated_go_bytes_raise_only_codec_errors(
    base: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(base)
    for pos, value in flips:
        data[pos % len(data)] = value
    _only_codec_errors(bytes(data))
    _only_codec_errors(bytes(data[: cut % (len(data) + 1)]))
    _only_codec_errors(b"\x01" + bytes(data))
