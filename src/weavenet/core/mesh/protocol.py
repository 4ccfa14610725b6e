"""Protocol messages carried in the framed TCP stream (§3.8) and gossip headers (§4.1).

Every message body is ``tag (1 byte) || payload``. Gossip payloads (tags 4, 5
and 6) are one gob stream of singleton values: channel name, source peer name,
[destination peer name for unicasts], data.
"""

from __future__ import annotations

from enum import IntEnum

import msgspec

from weavenet.core.errors import LocalProtocolError
from weavenet.core.wire.gob import BYTES, STRING, UINT, Decoder, GobError
from weavenet.core.wire.gob_types import put_uint


class Tag(IntEnum):
    HEARTBEAT = 0
    RESERVED1 = 1  # sleeve ConnectionEstablished
    RESERVED2 = 2  # sleeve FragmentationReceived
    RESERVED3 = 3  # sleeve PMTUVerified
    GOSSIP = 4
    GOSSIP_UNICAST = 5
    GOSSIP_BROADCAST = 6
    OVERLAY_CONTROL = 7


GOSSIP_TAGS = frozenset({Tag.GOSSIP, Tag.GOSSIP_UNICAST, Tag.GOSSIP_BROADCAST})
_MAX_UINT64 = (1 << 64) - 1


class GossipMessage(msgspec.Struct, frozen=True):
    """A decoded gossip header plus its channel data; ``dst`` only for unicasts."""

    channel: str
    src: int
    dst: int | None
    data: bytes


def _check_gossip_tag(tag: int) -> None:
    if tag not in GOSSIP_TAGS:
        raise LocalProtocolError(f"tag {tag} is not a gossip tag")


def encode_gossip(tag: int, msg: GossipMessage) -> bytes:
    """The payload (after the tag byte) of a gossip message."""
    _check_gossip_tag(tag)
    unicast = tag == Tag.GOSSIP_UNICAST
    if unicast != (msg.dst is not None):
        raise LocalProtocolError("dst must be given for unicast gossip and only for it")
    for value in (msg.src, msg.dst or 0):
        if not 0 <= value <= _MAX_UINT64:
            raise LocalProtocolError(f"peer name out of range: {value}")
    parts = [
        _singleton(_STRING_ID, _sized(msg.channel.encode())),
        _singleton(_UINT_ID, _uint(msg.src)),
    ]
    if msg.dst is not None:
        parts.append(_singleton(_UINT_ID, _uint(msg.dst)))
    parts.append(_singleton(_BYTES_ID, _sized(msg.data)))
    return b"".join(parts)


# Gossip headers are singleton values of gob's predefined types, written here directly
# (they head every gossip message): message length, type id, 0, value.
_STRING_ID, _UINT_ID, _BYTES_ID = 0x0C, 0x06, 0x0A  # int(6), int(3), int(5) in gob


def _uint(value: int) -> bytes:
    out = bytearray()
    put_uint(out, value)
    return bytes(out)


def _sized(data: bytes) -> bytes:
    return _uint(len(data)) + data


def _singleton(type_id: int, value: bytes) -> bytes:
    body = bytes((type_id, 0)) + value
    return _uint(len(body)) + body


def _fast_decode(tag: int, payload: bytes) -> GossipMessage | None:
    """The usual shape, parsed without the generic decoder; None if it is not that."""
    values: list[object] = []
    kinds = [_STRING_ID, _UINT_ID] + ([_UINT_ID] if tag == Tag.GOSSIP_UNICAST else []) + [_BYTES_ID]
    pos = 0
    for kind in kinds:
        length, pos = _read_uint(payload, pos)
        end = pos + length
        if length < 3 or end > len(payload) or payload[pos : pos + 2] != bytes((kind, 0)):
            return None
        value, used = _read_uint(payload, pos + 2)
        if kind == _UINT_ID:
            values.append(value)
        elif used + value == end:
            raw = payload[used:end]
            values.append(raw if kind == _BYTES_ID else raw.decode("utf-8", "surrogateescape"))
        else:
            return None
        if kind == _UINT_ID and used != end:
            return None
        pos = end
    dst = values[2] if tag == Tag.GOSSIP_UNICAST else None
    channel, src, data = values[0], values[1], values[-1]
    assert isinstance(channel, str) and isinstance(src, int) and isinstance(data, bytes)
    assert dst is None or isinstance(dst, int)
    return GossipMessage(channel, src, dst, data)


def _read_uint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); a value past the end reads as a huge length."""
    if pos >= len(data):
        return 1 << 62, pos
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    size = 0x100 - first
    if size > 8 or pos + 1 + size > len(data):
        return 1 << 62, pos
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def _expect(value: object, kind: type, what: str) -> None:
    if not isinstance(value, kind):
        raise GobError(f"gossip {what}: expected {kind.__name__}, got {type(value).__name__}")


def decode_gossip(tag: int, payload: bytes) -> GossipMessage:
    """Decode a gossip payload (``mesh:router.go:handleGossip``).

    Raises :class:`GobError` (a :class:`RemoteProtocolError`) on malformed
    payloads, including a unicast without a destination. Trailing data after
    the last value is ignored, as in Go.
    """
    _check_gossip_tag(tag)
    fast = _fast_decode(tag, payload)
    if fast is not None:
        return fast
    dec = Decoder(payload)
    channel = dec.decode(STRING)
    _expect(channel, str, "channel")
    src = dec.decode(UINT)
    _expect(src, int, "source")
    dst: object = None
    if tag == Tag.GOSSIP_UNICAST:
        dst = dec.decode(UINT)
        _expect(dst, int, "destination")
    data = dec.decode(BYTES)
    _expect(data, bytes, "data")
    assert isinstance(channel, str) and isinstance(src, int) and isinstance(data, bytes)
    assert dst is None or isinstance(dst, int)
    return GossipMessage(channel=channel, src=src, dst=dst, data=data)


def encode_message(tag: int, payload: bytes = b"") -> bytes:
    """A protocol message body: tag byte followed by the payload."""
    if not 0 <= tag <= 0xFF:
        raise LocalProtocolError(f"tag out of range: {tag}")
    return bytes([tag]) + payload


def split_message(body: bytes) -> tuple[int, bytes] | None:
    """``(tag, payload)`` of a message body; None for a blank message (Go ignores it)."""
    if not body:
        return None
    return body[0], body[1:]
