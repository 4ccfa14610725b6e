"""The fast sleeve's AEAD (AES-GCM from ``cryptography``), keyed from the connection's
session key, sans-IO.

Each direction has its own key: HKDF-SHA256 over the NaCl session key both ends derived
in the mesh handshake, with a label naming the direction (dialler to listener, listener
to dialler), so a datagram reflected back at its sender never opens. The nonce is the
superframe id (a per-direction counter from 1, 48 bits: no wrap in practice), so nonces
never repeat under one key. A superframe is sealed once, as a whole (one 16-byte tag per
~64 KB rather than per datagram, and AES-GCM runs at ~9 us per 64 KB): a forged or
corrupted datagram spoils its superframe, which is dropped, exactly as a lost one is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from weavenet.core.overlay.fast_sleeve_codec import Buffer, FastSleeveError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TAG = 16
FROM_DIALLER = b"weavenet fast sleeve v1: dialler to listener"
FROM_LISTENER = b"weavenet fast sleeve v1: listener to dialler"


def _derive(session_key: bytes, label: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(session_key)


def direction_keys(session_key: bytes, outbound: bool) -> tuple[bytes, bytes]:
    """(key we seal with, key we open with); ``outbound``: we dialled the connection."""
    if len(session_key) != 32:
        raise FastSleeveError(f"session key must be 32 bytes, not {len(session_key)}")
    dialler, listener = _derive(session_key, FROM_DIALLER), _derive(session_key, FROM_LISTENER)
    return (dialler, listener) if outbound else (listener, dialler)


def _nonce(sfid: int) -> bytes:
    return sfid.to_bytes(12, "big")


def _aead(key: bytes | None) -> AESGCM | None:
    """AES-GCM with ``key``; None for a plain connection, which never imports
    ``cryptography`` (start-up CPU, paid by every host at once when a mesh starts)."""
    if key is None:
        return None
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


class Sealer:
    """Seals superframes in one direction (``key`` None: a plain connection)."""

    __slots__ = ("aead", "overhead")

    def __init__(self, key: bytes | None) -> None:
        self.aead = _aead(key)
        self.overhead = TAG if key is not None else 0

    def seal(self, sfid: int, aad: bytes, body: Buffer) -> Buffer:
        if self.aead is None:
            return body
        return self.aead.encrypt(_nonce(sfid), body, aad)


class Opener:
    __slots__ = ("_invalid", "aead")

    def __init__(self, key: bytes | None) -> None:
        self.aead = _aead(key)
        self._invalid: tuple[type[Exception], ...] = ()  # bound once, not per superframe
        if key is not None:
            from cryptography.exceptions import InvalidTag

            self._invalid = (InvalidTag,)

    def open(self, sfid: int, aad: bytes, data: Buffer) -> Buffer:
        if self.aead is None:
            return data
        if len(data) < TAG:
            raise FastSleeveError(f"sealed superframe too short: {len(data)} bytes")
        try:
            return self.aead.decrypt(_nonce(sfid), data, aad)
        except self._invalid:
            raise FastSleeveError("superframe failed authentication") from None
