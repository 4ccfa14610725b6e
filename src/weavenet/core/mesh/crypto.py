"""Session key derivation and NaCl secretbox sealing of the mesh TCP stream.

See ``mesh:protocol_crypto.go``: the session key is
``SHA256(crypto_box_beforenm(remotePub, localPriv) || password)`` and every
framed message body is an XSalsa20-Poly1305 secretbox whose 24-byte nonce is
``flags || 0*15 || uint64 BE sequence number``, flags = 0x40 (TCP) | 0x80 if the
*sender* dialled the connection.

PyNaCl is imported by the functions that use it: a router without ``--password`` never
loads libsodium (start-up CPU, paid by every host at once when a mesh starts).
"""

from __future__ import annotations

import hashlib

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.wire.framing import MAX_TCP_MSG_SIZE, FrameDecoder, encode_frame

KEY_SIZE = 32
NONCE_SIZE = 24
MAC_SIZE = 16
_TCP_FLAG = 0x40
_OUTBOUND_FLAG = 0x80
_MAX_SEQ = (1 << 64) - 1


class DecryptError(RemoteProtocolError):
    """A TCP message failed to authenticate/decrypt (wrong password or tampering)."""


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh Curve25519 key pair ``(private, public)`` (``box.GenerateKey``)."""
    import nacl.public

    private = nacl.public.PrivateKey.generate()
    return bytes(private), bytes(private.public_key)


def public_key_of(private: bytes) -> bytes:
    """The Curve25519 public key belonging to ``private``."""
    import nacl.public

    return bytes(nacl.public.PrivateKey(private).public_key)


def derive_session_key(remote_public: bytes, local_private: bytes, password: bytes) -> bytes:
    """``SHA256(crypto_box_beforenm(remote_public, local_private) || password)``.

    Raises :class:`RemoteProtocolError` for a malformed or low-order remote key
    (Go would accept the latter; libsodium refuses it, and no honest peer sends one).
    """
    if len(remote_public) != KEY_SIZE:
        raise RemoteProtocolError(f"bad public key length {len(remote_public)}")
    if len(local_private) != KEY_SIZE:
        raise LocalProtocolError(f"bad private key length {len(local_private)}")
    import nacl.bindings
    import nacl.exceptions

    try:
        shared = nacl.bindings.crypto_box_beforenm(remote_public, local_private)
    except nacl.exceptions.RuntimeError as exc:  # libsodium rejects low-order points
        raise RemoteProtocolError("invalid public key: low-order point") from exc
    return hashlib.sha256(shared + password).digest()


def tcp_nonce(outbound_sender: bool, seq: int) -> bytes:
    """The 24-byte nonce of TCP message ``seq`` sent by the outbound/inbound side."""
    if not 0 <= seq <= _MAX_SEQ:
        raise LocalProtocolError(f"sequence number out of range: {seq}")
    flags = _TCP_FLAG | (_OUTBOUND_FLAG if outbound_sender else 0)
    return bytes([flags]) + bytes(15) + seq.to_bytes(8, "big")


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise LocalProtocolError(f"session key must be {KEY_SIZE} bytes, got {len(key)}")


class TcpSealer:
    """Seals the messages we send; one per connection direction."""

    def __init__(self, key: bytes, outbound: bool, seq: int = 0) -> None:
        _check_key(key)
        from nacl.bindings import crypto_secretbox_easy

        self._seal = crypto_secretbox_easy
        self._key = key
        self._outbound = outbound
        self.seq = seq

    def seal(self, plain: bytes) -> bytes:
        """Return ``MAC(16) || ciphertext`` for ``plain`` and advance the sequence."""
        nonce = tcp_nonce(self._outbound, self.seq)
        box = self._seal(plain, nonce, self._key)
        self.seq += 1
        return box


class TcpOpener:
    """Opens the messages the peer sends; ``outbound_remote`` = the peer dialled."""

    def __init__(self, key: bytes, outbound_remote: bool, seq: int = 0) -> None:
        _check_key(key)
        from nacl.bindings import crypto_secretbox_open_easy
        from nacl.exceptions import CryptoError

        self._open, self._error = crypto_secretbox_open_easy, CryptoError
        self._key = key
        self._outbound_remote = outbound_remote
        self.seq = seq

    def open(self, box: bytes) -> bytes:
        """Authenticate and decrypt ``box``; the sequence advances only on success."""
        if len(box) < MAC_SIZE:
            raise DecryptError("Unable to decrypt TCP msg")
        nonce = tcp_nonce(self._outbound_remote, self.seq)
        try:
            plain = self._open(box, nonce, self._key)
        except self._error as exc:
            raise DecryptError("Unable to decrypt TCP msg") from exc
        self.seq += 1
        return plain


class MessageCodec:
    """Framing plus optional sealing for the post-handshake message stream.

    ``outbound`` is True when we dialled the connection. ``send_seq`` and
    ``recv_seq`` are the next sequence numbers in each direction (1 after the
    features message on an encrypted connection).
    """

    def __init__(
        self,
        session_key: bytes | None,
        outbound: bool,
        send_seq: int = 0,
        recv_seq: int = 0,
        decoder: FrameDecoder | None = None,
    ) -> None:
        self.session_key = session_key
        self._sealer: TcpSealer | None = None
        self._opener: TcpOpener | None = None
        if session_key is not None:
            self._sealer = TcpSealer(session_key, outbound, send_seq)
            self._opener = TcpOpener(session_key, not outbound, recv_seq)
        self._decoder = decoder if decoder is not None else FrameDecoder()

    @property
    def encrypted(self) -> bool:
        return self.session_key is not None

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet form a complete message."""
        return self._decoder.buffered

    def encode(self, body: bytes) -> bytes:
        """Seal (if encrypted) and frame one message body."""
        if self._sealer is None:
            return encode_frame(body)
        if len(body) + MAC_SIZE > MAX_TCP_MSG_SIZE:
            raise LocalProtocolError(
                f"outgoing message too large: {len(body)} bytes (max {MAX_TCP_MSG_SIZE})"
            )
        return encode_frame(self._sealer.seal(body))

    def feed(self, data: bytes) -> list[bytes]:
        """Consume stream bytes; return the (decrypted) bodies they complete."""
        frames = self._decoder.feed(data)
        return self.open_frames(frames)

    def open_frames(self, frames: list[bytes]) -> list[bytes]:
        """Decrypt already-deframed message bodies (identity if unencrypted)."""
        if self._opener is None:
            return frames
        return [self._opener.open(frame) for frame in frames]
