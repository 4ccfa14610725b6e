"""The sleeve overlay's UDP packet format (weave-wire §7.2, §7.4), plain part.

A plain packet is ``sender(6) | record*``, a record ``src(6) | dst(6) | len(u16 BE) |
frame``. Encrypted packets (:mod:`weavenet.core.overlay.sleeve_crypto`) carry the
same record body inside a secretbox. Everything here is pure: callers own sockets.

Hot path notes: headers are packed/unpacked with one precompiled :class:`struct.Struct`
call each, bodies are built with a single ``b"".join`` and frames are sliced once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import msgspec

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.peername import NAME_SIZE

PLAIN_PACKET_OVERHEAD = 6  # sender name
NACL_PACKET_OVERHEAD = 30  # sender name + seqNoAndDF + secretbox MAC
FRAME_OVERHEAD = 14  # src + dst + length
MAX_UDP_PAYLOAD = 65507  # MaxUDPPacketSize 65535 - UDPOverhead 28
MAX_FRAMES_PER_PACKET = 100
MAX_FRAME_SIZE = 0xFFFF
UDP_IP_OVERHEAD = 28
ETHERNET_OVERHEAD = 14

HEARTBEAT_FRAME_SIZE = ETHERNET_OVERHEAD + 8
FRAG_TEST_SIZE = 60001
PMTU_PROBE_SIZE = 60000

Data = bytes | bytearray | memoryview
"""Byte buffers accepted by the decoders (a memoryview avoids copying a packet)."""

# src hi16, src lo32, dst hi16, dst lo32, frame length
_HEADER = struct.Struct(">HIHIH")
_U64 = struct.Struct(">Q")
_LOW32 = 0xFFFFFFFF
_ZERO_HEADER = bytes(ETHERNET_OVERHEAD)
_FRAG_TEST = bytes(FRAG_TEST_SIZE)


class SleeveError(RemoteProtocolError):
    """A sleeve UDP packet was malformed, failed to decrypt or was replayed.

    The packet is dropped; unlike other remote protocol errors it never closes the
    TCP connection (Go logs and carries on).
    """


class FrameRecord(msgspec.Struct):  # not frozen: created per frame, and frozen init costs 3x
    """One Ethernet frame captured at peer ``src`` and addressed to peer ``dst``."""

    src: int
    dst: int
    frame: bytes


def _header(record: FrameRecord) -> bytes:
    src, dst = record.src, record.dst
    try:
        return _HEADER.pack(src >> 32, src & _LOW32, dst >> 32, dst & _LOW32, len(record.frame))
    except struct.error as exc:
        raise LocalProtocolError(
            f"cannot encode frame record (src={src:#x} dst={dst:#x} len={len(record.frame)}): "
            "names must be 48-bit and frames at most 65535 bytes"
        ) from exc


def _append(parts: list[bytes], records: Iterable[FrameRecord]) -> list[bytes]:
    for record in records:
        parts.append(_header(record))
        parts.append(record.frame)
    return parts


def encode_records(records: Iterable[FrameRecord]) -> bytes:
    """The concatenated frame records: the body of a plain or encrypted packet."""
    return b"".join(_append([], records))


def _sender_bytes(sender: int) -> bytes:
    try:
        return sender.to_bytes(NAME_SIZE, "big")
    except OverflowError as exc:
        raise LocalProtocolError(f"sender name {sender:#x} is not a 48-bit name") from exc


def encode_plain(sender: int, records: Iterable[FrameRecord]) -> bytes:
    """A complete plain sleeve packet: ``sender(6)`` followed by the records."""
    return b"".join(_append([_sender_bytes(sender)], records))


def split_packet(packet: Data) -> tuple[int, bytes]:
    """``(sender name, rest)``; raises :class:`SleeveError` for packets under 6 bytes.

    ``rest`` is a copy; to avoid it, read the sender here and pass the whole packet
    with ``start=6`` to :func:`decode_records` or ``SleeveDecryptor.open``.
    """
    if len(packet) < NAME_SIZE:
        raise SleeveError(f"sleeve packet too short: {len(packet)} bytes")
    return int.from_bytes(packet[:NAME_SIZE], "big"), bytes(packet[NAME_SIZE:])


def decode_records(body: Data, start: int = 0) -> tuple[list[FrameRecord], str | None]:
    """Parse the records of ``body[start:]`` (Go's ``NonDecryptor.IterateFrames``).

    Returns the records parsed and ``None``, or - when a record is truncated or fewer
    than 14 bytes trail - the records before it and a description of the problem.
    """
    data: bytes | memoryview = body if isinstance(body, bytes) else memoryview(body)
    end = len(data)
    pos = start
    unpack = _HEADER.unpack_from
    records: list[FrameRecord] = []
    append = records.append
    while pos < end:
        if end - pos < FRAME_OVERHEAD:
            return records, f"{end - pos} trailing bytes: too short for a frame header"
        src_hi, src_lo, dst_hi, dst_lo, length = unpack(data, pos)
        pos += FRAME_OVERHEAD
        if pos + length > end:
            return records, f"truncated frame: length {length} but {end - pos} bytes remain"
        frame = bytes(data[pos : pos + length])  # no copy when data is bytes already
        append(FrameRecord((src_hi << 32) | src_lo, (dst_hi << 32) | dst_lo, frame))
        pos += length
    return records, None


class PlainSealer:
    """The plain counterpart of ``SleeveEncryptor``: ``seal(body, df)`` = sender + body."""

    packet_overhead = PLAIN_PACKET_OVERHEAD

    def __init__(self, sender: int) -> None:
        self._sender = _sender_bytes(sender)

    def seal(self, records_body: bytes, df: bool = False) -> bytes:
        """``df`` only matters for encryption; it is accepted for symmetry."""
        return self._sender + records_body


class Batcher:
    """Aggregates records into packet bodies like Go's ``aggregateAndSend``/``fits``.

    A body holds at most ``max_frames`` records and, together with the packet
    overhead (6 plain, 30 NaCl), at most ``max_payload`` bytes of UDP payload. A
    record too big to fit even alone is still emitted, alone, in its own body (as Go
    does; the send then fails with EMSGSIZE, which drives PMTU discovery).
    ``max_payload`` may be changed at any time (after PMTU discovery).
    """

    def __init__(
        self,
        max_payload: int = MAX_UDP_PAYLOAD,
        packet_overhead: int = PLAIN_PACKET_OVERHEAD,
        max_frames: int = MAX_FRAMES_PER_PACKET,
    ) -> None:
        if max_frames < 1:
            raise LocalProtocolError(f"max_frames must be positive, got {max_frames}")
        self.max_payload = max_payload
        self.packet_overhead = packet_overhead
        self.max_frames = max_frames
        self._parts: list[bytes] = []
        self._size = packet_overhead
        self._count = 0

    @property
    def pending(self) -> int:
        """Number of records waiting in the current body."""
        return self._count

    def add(self, record: FrameRecord) -> list[bytes]:
        """Queue ``record``; return the bodies that became complete (0, 1 or 2)."""
        need = FRAME_OVERHEAD + len(record.frame)
        full: list[bytes] = []
        if self._count and self._size + need > self.max_payload:
            full.append(self._take())
        self._parts.append(_header(record))
        self._parts.append(record.frame)
        self._size += need
        self._count += 1
        if self._count >= self.max_frames or self.max_payload - self._size < FRAME_OVERHEAD:
            full.append(self._take())
        return full

    def flush(self) -> bytes | None:
        """The pending body, if any (call when the send queue runs dry)."""
        return self._take() if self._count else None

    def _take(self) -> bytes:
        body = b"".join(self._parts)
        self._parts = []
        self._size = self.packet_overhead
        self._count = 0
        return body


# --- special (control) frames, §7.4 ---------------------------------------------


class Special(msgspec.Struct, frozen=True):
    """A decoded control frame: ``kind`` is "heartbeat", "fragtest" or "mtutest"."""

    kind: str
    conn_uid: int = 0
    mtu: int = 0
    valid: bool = True


def heartbeat_frame(conn_uid: int) -> bytes:
    """22 bytes: the 14-byte all-zero Ethernet header and ``connUID`` (uint64 BE)."""
    try:
        return _ZERO_HEADER + _U64.pack(conn_uid)
    except struct.error as exc:
        raise LocalProtocolError(f"connection UID {conn_uid} is not a uint64") from exc


def frag_test_frame() -> bytes:
    """The 60001-byte all-zero fragmentation test frame (sent on the non-DF path)."""
    return _FRAG_TEST


def pmtu_probe_frame() -> bytes:
    """The 60000-byte all-zero probe whose EMSGSIZE starts the MTU search (DF path)."""
    return bytes(PMTU_PROBE_SIZE)


def mtu_test_frame(mtu: int) -> bytes:
    """An all-zero MTU test frame of ``mtu + 14`` bytes (DF path)."""
    if not 0 <= mtu <= MAX_FRAME_SIZE - ETHERNET_OVERHEAD:
        raise LocalProtocolError(f"MTU {mtu} out of range")
    return bytes(mtu + ETHERNET_OVERHEAD)


def classify_special(frame: bytes) -> Special | None:
    """Decode a control frame, or ``None`` for an ordinary Ethernet frame.

    Special = dst MAC, src MAC and EtherType all zero (so not IPv4). The kind is then
    chosen purely by length, as Go's ``handleSpecialFrame`` does.
    """
    if not frame.startswith(_ZERO_HEADER):
        return None
    length = len(frame)
    if length == HEARTBEAT_FRAME_SIZE:
        return Special("heartbeat", conn_uid=_U64.unpack_from(frame, ETHERNET_OVERHEAD)[0])
    if length == FRAG_TEST_SIZE:
        return Special("fragtest", valid=frame == _FRAG_TEST)
    return Special("mtutest", mtu=length - ETHERNET_OVERHEAD)


def overhead_df(encrypted: bool) -> int:
    """UDP/IP + packet + record + Ethernet overhead used in PMTU math: 62 plain, 86 NaCl."""
    packet = NACL_PACKET_OVERHEAD if encrypted else PLAIN_PACKET_OVERHEAD
    return UDP_IP_OVERHEAD + packet + FRAME_OVERHEAD + ETHERNET_OVERHEAD
