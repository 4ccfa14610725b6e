"""The fast sleeve's wire format, sans-IO: superframes cut into datagrams and put back.

A *superframe* is what one send carries: for data, the origin and destination peers
(6 B each), the TAP's ``virtio_net_hdr`` (10 B) and an Ethernet frame of up to ~64 KB (a
TSO superframe the kernel segments at the far end); for a heartbeat, the connection UID
(8 B) and zero padding up to one datagram. Sealed (AES-GCM, when the connection is
encrypted) as a whole, then cut into chunks of ``datagram size - HEADER`` bytes; every
datagram carries a 16-byte header::

    magic 0xF5 | kind | sender peer (6 B) | superframe id (6 B) | index | count

so the receiver knows whose keys to use, and where the chunk goes. The first 14 bytes are
the AEAD's associated data and the id its nonce, per direction (ids count up from 1). All
chunks but the last have the same size (one ``UDP_SEGMENT`` send cuts them so), which the
:class:`Reassembler` uses to place chunks that arrive out of order. A superframe missing a
datagram is dropped whole once newer ones push it out (TCP retransmits).
"""

from __future__ import annotations

import struct
from enum import IntEnum

import msgspec

MAGIC = 0xF5
HEADER = 16
AAD_SIZE = 14
MAX_COUNT = 255
PEERS = 12  # origin and destination peer names at the start of a data superframe
_HEADER = struct.Struct("!BBHIHIBB")
Buffer = bytes | bytearray | memoryview


class Kind(IntEnum):
    DATA = 1
    HEARTBEAT = 2


class FastSleeveError(ValueError):
    """A datagram or superframe that is not ours, or is damaged, forged or replayed."""


class Header(msgspec.Struct, frozen=True):
    kind: Kind
    sender: int
    sfid: int
    index: int
    count: int


def pack_prefix(kind: Kind, sender: int, sfid: int) -> bytes:
    """The first 14 header bytes: the same for every datagram of one superframe."""
    return _HEADER.pack(
        MAGIC, kind, sender >> 32, sender & 0xFFFFFFFF, sfid >> 32, sfid & 0xFFFFFFFF, 0, 0
    )[:AAD_SIZE]


def parse_header(buf: Buffer, offset: int = 0) -> Header:
    if len(buf) - offset < HEADER + 1:
        raise FastSleeveError(f"fast sleeve datagram too short: {len(buf) - offset} bytes")
    magic, kind, s_hi, s_lo, f_hi, f_lo, index, count = _HEADER.unpack_from(buf, offset)
    if magic != MAGIC or kind not in (Kind.DATA, Kind.HEARTBEAT):
        raise FastSleeveError(f"not a fast sleeve datagram (magic {magic:#x}, kind {kind})")
    if index >= count:
        raise FastSleeveError(f"datagram {index} of a superframe of {count}")
    return Header(Kind(kind), (s_hi << 32) | s_lo, (f_hi << 32) | f_lo, index, count)


def chunk_size(datagram_size: int) -> int:
    return datagram_size - HEADER


def split(prefix: bytes, body: Buffer, datagram_size: int, per_send: int) -> list[list[Buffer]]:
    """The datagrams of a superframe as scatter lists (header, chunk, header, chunk...),
    at most ``per_send`` datagrams each: one ``UDP_SEGMENT`` send apiece."""
    size = chunk_size(datagram_size)
    view = memoryview(body)
    count = -(-len(view) // size)
    if not 0 < count <= MAX_COUNT:
        raise FastSleeveError(f"superframe of {len(view)} bytes cannot be sent in {size}s")
    sends: list[list[Buffer]] = []
    for first in range(0, count, per_send):
        iov: list[Buffer] = []
        for index in range(first, min(first + per_send, count)):
            iov.append(prefix + bytes((index, count)))
            iov.append(view[index * size : (index + 1) * size])
        sends.append(iov)
    return sends


def contiguous_run(view: memoryview, length: int, step: int) -> tuple[int, int, bytes] | None:
    """(first index, count, chunks joined) if a UDP GRO run (``length`` bytes, datagrams
    of ``step``) holds consecutive datagrams of one superframe: the common case, joined
    with no per-datagram bookkeeping. None: let :meth:`Reassembler.add` sort it out."""
    first, count = view[HEADER - 2], view[HEADER - 1]
    if length <= step or first >= count or first + -(-length // step) > count:
        return None
    prefix = view[:AAD_SIZE]
    for index, start in enumerate(range(step, length, step), first + 1):
        if view[start + AAD_SIZE] != index or view[start : start + AAD_SIZE] != prefix:
            return None
        if view[start + AAD_SIZE + 1] != count:
            return None
    return first, count, b"".join([view[s + HEADER : s + step] for s in range(0, length, step)])


class _Partial(msgspec.Struct):
    count: int
    stride: int = 0  # the size of every chunk but the last; 0 until one arrives
    mask: int = 0
    end: int = 0  # where the last chunk ends (0 until placed)
    buf: bytearray | None = None
    tail: bytes | None = None  # the last chunk, kept aside until the stride is known


class Reassembler:
    """Superframes of one sender, put back together from datagrams in any order."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self.pending: dict[int, _Partial] = {}
        self.lost = 0  # superframes dropped incomplete
        self.duplicates = 0  # datagrams that arrived twice

    def add(self, sfid: int, index: int, count: int, chunk: Buffer) -> bytearray | None:
        """The whole superframe when ``chunk`` completes it, else None (FastSleeveError
        for a chunk that contradicts the ones before; the superframe is then dropped)."""
        if count == 1:
            return bytearray(chunk)
        part = self.pending.get(sfid)
        if part is None:
            if len(self.pending) >= self.capacity:
                del self.pending[next(iter(self.pending))]
                self.lost += 1
            part = self.pending[sfid] = _Partial(count)
        bit = 1 << index
        if part.mask & bit:
            self.duplicates += 1
            return None
        try:
            self._place(part, index, count, chunk)
        except FastSleeveError:
            del self.pending[sfid]
            self.lost += 1
            raise
        part.mask |= bit
        if part.mask != (1 << count) - 1:
            return None
        del self.pending[sfid]
        buf = part.buf
        assert buf is not None
        del buf[part.end :]
        return buf

    def add_block(
        self, sfid: int, first: int, count: int, data: bytes, stride: int
    ) -> bytes | bytearray | None:
        """:meth:`add` for consecutive chunks ``first``... joined in ``data``, each
        ``stride`` bytes but maybe the superframe's last."""
        blocks = -(-len(data) // stride)
        if first == 0 and blocks == count and sfid not in self.pending:
            return data  # the whole superframe at once
        part = self.pending.get(sfid)
        if part is None:
            return self._new_block(sfid, first, count, data, stride)
        bits = ((1 << blocks) - 1) << first
        if part.count != count or (part.stride and part.stride != stride):
            del self.pending[sfid]
            self.lost += 1
            raise FastSleeveError(f"superframe of {part.count} datagrams, one says {count}")
        if part.mask & bits:
            self.duplicates += 1
            return None
        if not part.stride:
            part.stride, part.buf = stride, bytearray(stride * count)
            if part.tail is not None:
                tail, part.tail = part.tail, None
                self._place(part, count - 1, count, tail)
        return self._fill(sfid, part, first, data, bits)

    def _new_block(
        self, sfid: int, first: int, count: int, data: bytes, stride: int
    ) -> bytearray | None:
        if len(self.pending) >= self.capacity:
            del self.pending[next(iter(self.pending))]
            self.lost += 1
        part = self.pending[sfid] = _Partial(count, stride, 0, 0, bytearray(stride * count))
        bits = ((1 << -(-len(data) // stride)) - 1) << first
        return self._fill(sfid, part, first, data, bits)

    def _fill(
        self, sfid: int, part: _Partial, first: int, data: bytes, bits: int
    ) -> bytearray | None:
        assert part.buf is not None
        start = first * part.stride
        part.buf[start : start + len(data)] = data
        if bits >> (part.count - 1):
            part.end = start + len(data)
        part.mask |= bits
        if part.mask != (1 << part.count) - 1:
            return None
        del self.pending[sfid]
        del part.buf[part.end :]
        return part.buf

    def take_lost(self) -> int:
        lost, self.lost = self.lost, 0
        return lost

    @staticmethod
    def _place(part: _Partial, index: int, count: int, chunk: Buffer) -> None:
        size = len(chunk)
        if count != part.count or not size:
            raise FastSleeveError(f"superframe of {part.count} datagrams, one says {count}")
        if index == count - 1:
            if not part.stride:
                part.tail = bytes(chunk)
                return
            if size > part.stride:
                raise FastSleeveError(f"last chunk {size} bytes, others {part.stride}")
        elif not part.stride:
            part.stride, part.buf = size, bytearray(size * count)
            if part.tail is not None:
                tail, part.tail = part.tail, None
                Reassembler._place(part, count - 1, count, tail)
        elif size != part.stride:
            raise FastSleeveError(f"chunk of {size} bytes among chunks of {part.stride}")
        start = index * part.stride
        assert part.buf is not None
        part.buf[start : start + size] = chunk
        if index == count - 1:
            part.end = start + size
