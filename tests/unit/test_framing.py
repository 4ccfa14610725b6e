"""Length-prefixed framing of the mesh TCP stream (weave-wire §3.3 step 2)."""

from __future__ import annotations

import pytest

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.wire.framing import (
    MAX_TCP_MSG_SIZE,
    FrameDecoder,
    FrameTooLarge,
    encode_frame,
)


def test_max_size_constant() -> None:
    assert MAX_TCP_MSG_SIZE == 10_485_760


def test_encode_frame_prefixes_big_endian_length() -> None:
    assert encode_frame(b"") == bytes.fromhex("00000000")
    assert encode_frame(b"\x00") == bytes.fromhex("0000000100")
    assert encode_frame(b"x" * 0x0102) == bytes.fromhex("00000102") + b"x" * 0x0102


def test_encode_frame_accepts_exactly_max_size() -> None:
    frame = encode_frame(bytes(MAX_TCP_MSG_SIZE))
    assert frame[:4] == MAX_TCP_MSG_SIZE.to_bytes(4, "big")
    assert len(frame) == MAX_TCP_MSG_SIZE + 4


def test_encode_frame_rejects_oversized_body() -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(bytes(MAX_TCP_MSG_SIZE + 1))


def test_decoder_returns_complete_bodies_in_order() -> None:
    dec = FrameDecoder()
    stream = encode_frame(b"one") + encode_frame(b"") + encode_frame(b"three")
    assert dec.feed(stream) == [b"one", b"", b"three"]
    assert dec.buffered == 0


def test_decoder_buffers_partial_input_byte_at_a_time() -> None:
    dec = FrameDecoder()
    stream = encode_frame(b"hello") + encode_frame(b"world!")
    out: list[bytes] = []
    for i in range(len(stream)):
        out += dec.feed(stream[i : i + 1])
        if i < 8:
            assert out == []
    assert out == [b"hello", b"world!"]
    assert dec.buffered == 0


def test_decoder_partial_body_is_buffered() -> None:
    dec = FrameDecoder()
    assert dec.feed(encode_frame(b"abcdef")[:7]) == []
    assert dec.buffered == 3
    assert dec.feed(b"def" + b"\x00\x00") == [b"abcdef"]
    assert dec.buffered == 2


def test_decoder_empty_feed_is_harmless() -> None:
    dec = FrameDecoder()
    assert dec.feed(b"") == []
    assert dec.buffered == 0


def test_decoder_rejects_oversized_length_before_body_arrives() -> None:
    dec = FrameDecoder()
    with pytest.raises(FrameTooLarge) as info:
        dec.feed((MAX_TCP_MSG_SIZE + 1).to_bytes(4, "big"))
    assert isinstance(info.value, RemoteProtocolError)
    assert dec.buffered == 0


def test_decoder_rejects_oversized_length_fed_one_byte_at_a_time() -> None:
    dec = FrameDecoder()
    prefix = bytes.fromhex("ffffffff")
    for b in prefix[:3]:
        assert dec.feed(bytes([b])) == []
    with pytest.raises(FrameTooLarge):
        dec.feed(prefix[3:])


def test_decoder_accepts_length_equal_to_max() -> None:
    dec = FrameDecoder()
    assert dec.feed(MAX_TCP_MSG_SIZE.to_bytes(4, "big")) == []
    assert dec.feed(bytes(MAX_TCP_MSG_SIZE)) == [bytes(MAX_TCP_MSG_SIZE)]


def test_decoder_custom_cap() -> None:
    dec = FrameDecoder(max_size=3)
    assert dec.feed(encode_frame(b"abc")) == [b"abc"]
    with pytest.raises(FrameTooLarge):
        dec.feed(encode_frame(b"abcd"))
