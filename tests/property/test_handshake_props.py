"""Property tests: hostile input to the handshake, framing and message codec."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.mesh.crypto import MessageCodec
from weavenet.core.mesh.features import FEATURES_TYPE
from weavenet.core.mesh.handshake import Handshake, HandshakeConfig
from weavenet.core.mesh.protocol import GossipMessage, Tag, decode_gossip, encode_gossip
from weavenet.core.wire.framing import FrameDecoder, encode_frame
from weavenet.core.wire.gob import encode_value

KEY = bytes(range(32))
FEATURES = {"PeerNameFlavour": "mac", "Name": "02:00:00:00:00:01", "NickName": "x"}
# Valid prefixes make it likely that the fuzz reaches the later states.
PREFIXES = [
    b"",
    b"weave\x02\x02",
    b"weave\x01\x02\x00",
    b"weave\x02\x02\x01",
    b"weave\x02\x02\x00" + encode_frame(encode_value(FEATURES_TYPE, FEATURES)),
]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


chunks = st.tuples(st.binary(max_size=300), st.lists(st.integers(0, 10_000), max_size=12))


def feed_handshake(hs: Handshake, pieces: list[bytes]) -> None:
    for piece in pieces:
        if not piece:
            continue
        if hs.done:
            hs.result.codec.feed(piece)
        else:
            hs.receive_data(piece)


@settings(max_examples=300)
@given(
    st.sampled_from(PREFIXES),
    chunks,
    st.booleans(),
    st.sampled_from([None, b"pw"]),
    st.booleans(),
)
def test_handshake_raises_only_remote_errors(
    prefix: bytes,
    data_cuts: tuple[bytes, list[int]],
    outbound: bool,
    password: bytes | None,
    eof: bool,
) -> None:
    data, cuts = data_cuts
    hs = Handshake(HandshakeConfig(features=FEATURES, outbound=outbound, password=password))
    try:
        feed_handshake(hs, split(prefix + data, cuts))
        if eof and not hs.done:
            hs.receive_data(b"")
    except RemoteProtocolError:
        return
    assert hs.done or not eof


@given(chunks)
def test_handshake_split_points_do_not_matter(data_cuts: tuple[bytes, list[int]]) -> None:
    data, cuts = data_cuts
    stream = PREFIXES[-1] + data

    def outcome(pieces: list[bytes]) -> object:
        hs = Handshake(HandshakeConfig(features=FEATURES, outbound=True))
        try:
            feed_handshake(hs, pieces)
        except RemoteProtocolError as exc:
            return type(exc)
        return hs.result.remote_features, hs.data_to_send()

    assert outcome([stream]) == outcome(split(stream, cuts))


@given(chunks, st.integers(0, 64))
def test_frame_decoder_raises_only_remote_errors(
    data_cuts: tuple[bytes, list[int]], cap: int
) -> None:
    data, cuts = data_cuts
    dec = FrameDecoder(max_size=cap)
    with contextlib.suppress(RemoteProtocolError):
        for piece in split(data, cuts):
            dec.feed(piece)


@given(st.lists(st.binary(max_size=200), max_size=10), st.lists(st.integers(0, 5000)))
def test_framing_round_trip(bodies: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(b) for b in bodies)
    dec = FrameDecoder()
    got: list[bytes] = []
    for piece in split(stream, cuts):
        got += dec.feed(piece)
    assert got == bodies
    assert dec.buffered == 0


@pytest.mark.parametrize("key", [None, KEY])
@given(data_cuts=chunks, outbound=st.booleans())
def test_message_codec_raises_only_remote_errors(
    key: bytes | None, data_cuts: tuple[bytes, list[int]], outbound: bool
) -> None:
    data, cuts = data_cuts
    codec = MessageCodec(key, outbound)
    with contextlib.suppress(RemoteProtocolError):
        for piece in split(data, cuts):
            codec.feed(piece)


@pytest.mark.parametrize("key", [None, KEY])
@given(bodies=st.lists(st.binary(max_size=100), max_size=8), cuts=st.lists(st.integers(0, 3000)))
def test_message_codec_round_trip(key: bytes | None, bodies: list[bytes], cuts: list[int]) -> None:
    sender = MessageCodec(key, outbound=True, send_seq=1)
    receiver = MessageCodec(key, outbound=False, recv_seq=1)
    stream = b"".join(sender.encode(b) for b in bodies)
    got: list[bytes] = []
    for piece in split(stream, cuts):
        got += receiver.feed(piece)
    assert got == bodies


@given(st.binary(max_size=200), st.sampled_from([Tag.GOSSIP, Tag.GOSSIP_UNICAST]))
def test_decode_gossip_raises_only_remote_errors(payload: bytes, tag: Tag) -> None:
    with contextlib.suppress(RemoteProtocolError):
        decode_gossip(tag, payload)


@given(
    st.text(max_size=30),
    st.integers(0, (1 << 48) - 1),
    st.none() | st.integers(0, (1 << 48) - 1),
    st.binary(max_size=300),
)
def test_gossip_round_trip(channel: str, src: int, dst: int | None, data: bytes) -> None:
    tag = Tag.GOSSIP_BROADCAST if dst is None else Tag.GOSSIP_UNICAST
    msg = GossipMessage(channel, src, dst, data)
    assert decode_gossip(tag, encode_gossip(tag, msg)) == msg
