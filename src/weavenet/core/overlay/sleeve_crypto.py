"""NaCl-encrypted sleeve packets (weave-wire §7.3, Go's ``NaClEncryptor``/``NaClDecryptor``).

Packet: ``sender(6) | seqNoAndDF(u64 BE) | secretbox(records)``. Bit 63 of
``seqNoAndDF`` marks the DF path; the DF and non-DF paths count separately from 0.
Nonce: ``flags | 0*15 | seqNoAndDF`` with flags bit7 = the *sender* dialled the TCP
connection, bit6 = 0 (UDP; the TCP stream uses 0x40). Key: the connection's session key.

The receiver keeps, per path, a replay window of 2^20 sequence numbers: bitsets of
the offsets seen in the current and previous window. Replay state only advances
after the box authenticated.

PyNaCl is imported when the first encrypted connection is made: a router without a
password never loads it.
"""

from __future__ import annotations

import struct

from weavenet.core.errors import LocalProtocolError
from weavenet.core.overlay.sleeve_codec import NACL_PACKET_OVERHEAD, Data, SleeveError
from weavenet.core.peername import NAME_SIZE

KEY_SIZE = 32
MAC_SIZE = 16
SEQ_SIZE = 8
DF_BIT = 1 << 63
SEQ_MASK = DF_BIT - 1
WINDOW_BITS = 20
_OFFSET_MASK = (1 << WINDOW_BITS) - 1
_BITMAP_BYTES = (1 << WINDOW_BITS) // 8
_OUTBOUND_FLAG = b"\x80"
_INBOUND_FLAG = b"\x00"
_NONCE_PAD = bytes(15)
_U64 = struct.Struct(">Q")


class DecryptFailed(SleeveError):
    """The secretbox did not authenticate (wrong key, tampering or garbage)."""


class Replayed(SleeveError):
    """The sequence number was seen already, or is older than the previous window."""


def _check_key(key: bytes) -> bytes:
    if len(key) != KEY_SIZE:
        raise LocalProtocolError(f"session key must be {KEY_SIZE} bytes, got {len(key)}")
    return bytes(key)


def _nonce_prefix(outbound_sender: bool) -> bytes:
    return (_OUTBOUND_FLAG if outbound_sender else _INBOUND_FLAG) + _NONCE_PAD


class SleeveEncryptor:
    """Seals record bodies sent by ``sender`` over one connection (both paths)."""

    packet_overhead = NACL_PACKET_OVERHEAD

    def __init__(self, key: bytes, outbound: bool, sender: int) -> None:
        from nacl.bindings import crypto_secretbox_easy

        self._seal = crypto_secretbox_easy
        self._key = _check_key(key)
        self._prefix = _nonce_prefix(outbound)
        try:
            self._sender = sender.to_bytes(NAME_SIZE, "big")
        except OverflowError as exc:
            raise LocalProtocolError(f"sender name {sender:#x} is not a 48-bit name") from exc
        self.seq = 0  # next non-DF sequence number
        self.seq_df = 0  # next DF sequence number

    def seal(self, records_body: bytes, df: bool) -> bytes:
        """The full packet ``sender | seqNoAndDF | secretbox(records_body)``."""
        if df:
            seq = self.seq_df
            word = seq | DF_BIT
        else:
            seq = word = self.seq
        if seq > SEQ_MASK:
            raise LocalProtocolError("sleeve sequence numbers exhausted")
        seq_bytes = _U64.pack(word)
        box = self._seal(records_body, self._prefix + seq_bytes, self._key)
        if df:
            self.seq_df = seq + 1
        else:
            self.seq = seq + 1
        return b"".join((self._sender, seq_bytes, box))


class ReplayWindow:
    """Go's ``NaClDecryptorInstance`` replay state for one path.

    Bitsets are bytearrays grown on demand up to 128 KiB (2^20 bits), so an idle
    path costs nothing and a busy one is bounded.
    """

    __slots__ = ("current", "previous", "window")

    def __init__(self) -> None:
        self.window = 0
        self.current = bytearray()
        self.previous = bytearray()

    def accept(self, seq: int) -> None:
        """Record ``seq`` as seen, or raise :class:`Replayed` leaving the state as is."""
        offset = seq & _OFFSET_MASK
        window = seq >> WINDOW_BITS
        delta = window - self.window
        if delta == 0:
            _mark(self.current, offset, seq)
        elif delta == 1:
            self.window = window
            self.previous = self.current
            self.current = bytearray()
            _mark(self.current, offset, seq)
        elif delta > 1:
            self.window = window
            self.previous = bytearray()
            self.current = bytearray()
            _mark(self.current, offset, seq)
        elif delta == -1:
            _mark(self.previous, offset, seq)
        else:
            raise Replayed(f"sequence number {seq} is older than the replay window")


def _mark(bits: bytearray, offset: int, seq: int) -> None:
    index = offset >> 3
    mask = 1 << (offset & 7)
    if index >= len(bits):
        # grow geometrically, capped at the full window size
        bits.extend(bytes(min(_BITMAP_BYTES, max(index + 1, 2 * len(bits), 64)) - len(bits)))
    elif bits[index] & mask:
        raise Replayed(f"sequence number {seq} replayed")
    bits[index] |= mask


class SleeveDecryptor:
    """Opens packets from the remote end of one connection (``remote_outbound`` = it dialled)."""

    def __init__(self, key: bytes, remote_outbound: bool) -> None:
        from nacl.bindings import crypto_secretbox_open_easy
        from nacl.exceptions import CryptoError

        self._open, self._error = crypto_secretbox_open_easy, CryptoError
        self._key = _check_key(key)
        self._prefix = _nonce_prefix(remote_outbound)
        self.non_df = ReplayWindow()
        self.df = ReplayWindow()

    def open(self, rest: Data, start: int = 0) -> bytes:
        """Decrypt ``rest[start:]`` (the packet after the sender name) into a records body.

        Pass the whole packet with ``start=6`` to avoid copying it first. Raises
        :class:`DecryptFailed` or :class:`Replayed`; state advances only on success.
        """
        if len(rest) - start < SEQ_SIZE + MAC_SIZE:
            raise DecryptFailed(f"encrypted sleeve packet too short: {len(rest) - start} bytes")
        word = _U64.unpack_from(rest, start)[0]
        box_start = start + SEQ_SIZE
        nonce = self._prefix + bytes(rest[start:box_start])
        try:
            body = self._open(bytes(rest[box_start:]), nonce, self._key)
        except self._error as exc:
            raise DecryptFailed("UDP packet decryption failed") from exc
        (self.df if word & DF_BIT else self.non_df).accept(word & SEQ_MASK)
        return body
