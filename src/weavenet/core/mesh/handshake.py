"""The mesh TCP handshake (protocol header + V2 intro) as a sans-IO state machine.

Sequence (``mesh:protocol.go:exchangeProtocolHeader/doIntroV2``), each side
sending its part without waiting for the peer:

1. 7-byte header ``"weave" minVer maxVer``; negotiated version = min of the maxima.
2. encryption flag ``00`` or ``01 || Curve25519 public key (32 B)``.
3. first framed message: ``gob(map[string]string)`` features, sealed as
   sequence number 0 when a password is configured.

``weavenet.core.mesh.features`` gives the feature map its meaning (§3.4, §3.7 steps
1-2) and holds the errors the handshake raises.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.mesh.crypto import (
    KEY_SIZE,
    DecryptError,
    MessageCodec,
    derive_session_key,
    generate_keypair,
)
from weavenet.core.mesh.features import (
    FEATURES_TYPE,
    HandshakeError,
    decode_features,
)
from weavenet.core.wire.gob import encode_value

PROTOCOL_HEADER = b"weave"
PROTOCOL_MIN_VERSION = 1
PROTOCOL_MAX_VERSION = 2
HEADER_SIZE = len(PROTOCOL_HEADER) + 2

_FLAG_PLAIN = 0x00
_FLAG_ENCRYPTED = 0x01


def encode_header(min_version: int, max_version: int) -> bytes:
    """The 7-byte protocol header ``"weave" || min || max``."""
    return PROTOCOL_HEADER + bytes([min_version, max_version])


class HandshakeConfig(msgspec.Struct, frozen=True):
    """Our side of a handshake. ``features`` is the already-built feature map."""

    features: Mapping[str, str]
    outbound: bool
    password: bytes | None = None
    min_version: int = 2
    max_version: int = 2
    keypair: tuple[bytes, bytes] | None = None  # (private, public); generated if None

    def __post_init__(self) -> None:
        lo, hi = self.min_version, self.max_version
        if not PROTOCOL_MIN_VERSION <= lo <= hi <= PROTOCOL_MAX_VERSION:
            raise LocalProtocolError(f"invalid protocol version range {lo}..{hi}")
        if self.keypair is not None and any(len(k) != KEY_SIZE for k in self.keypair):
            raise LocalProtocolError("keypair must be two 32-byte keys")

    @property
    def encrypted(self) -> bool:
        """weaver treats an empty password as no password."""
        return bool(self.password)


class HandshakeResult(msgspec.Struct, frozen=True):
    """Outcome of a completed handshake; ``codec`` continues the message stream."""

    version: int
    remote_features: dict[str, str]
    session_key: bytes | None
    codec: MessageCodec
    leftover: list[bytes] = msgspec.field(default_factory=list)


WRONG_PASSWORD_HINT = "check that every peer uses the same --password"


class Handshake:
    """Drive one side of the handshake: feed received bytes, send what it produces."""

    def __init__(self, config: HandshakeConfig) -> None:
        self._config = config
        self._out = bytearray(encode_header(config.min_version, config.max_version))
        self._buf = bytearray()
        self._state = "header"  # header -> flag -> [pubkey] -> features -> done
        self._failed = False
        self._version = 0
        self._private = b""
        self._public = b""
        if config.encrypted:
            self._private, self._public = config.keypair or generate_keypair()
        self._codec: MessageCodec | None = None
        self._result: HandshakeResult | None = None

    # -- public API -----------------------------------------------------------

    @property
    def stage(self) -> str:
        """``"header"``, ``"intro"`` or ``"done"`` (for the shell's deadlines)."""
        if self._state in ("header", "done"):
            return self._state
        return "intro"

    @property
    def done(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> HandshakeResult:
        if self._result is None:
            raise LocalProtocolError("handshake not complete")
        return self._result

    @property
    def public_key(self) -> bytes | None:
        """Our ephemeral Curve25519 public key (None on unencrypted connections)."""
        return self._public or None

    def data_to_send(self) -> bytes:
        """Drain and return the bytes we owe the peer."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes) -> None:
        """Consume bytes from the peer; ``b""`` signals EOF.

        Raises a :class:`RemoteProtocolError` subclass if the peer misbehaves;
        the handshake is then dead and must not be fed again.
        """
        if self._failed:
            raise LocalProtocolError("handshake already failed")
        if self._result is not None:
            raise LocalProtocolError("handshake complete: feed result.codec instead")
        try:
            if not data:
                raise HandshakeError("connection closed during handshake")
            self._receive(data)
        except RemoteProtocolError:
            self._failed = True
            raise

    # -- state machine --------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        if self._state == "features":
            self._on_bodies(self._feed(data))
            return
        self._buf += data
        while self._state != "features":
            if not self._step():
                return
        rest = bytes(self._buf)
        self._buf.clear()
        self._on_bodies(self._feed(rest))

    def _feed(self, data: bytes) -> list[bytes]:
        """Frame (and open) the features message: the first sealed one, so failing to
        open it means the two peers were given different passwords."""
        assert self._codec is not None
        try:
            return self._codec.feed(data)
        except DecryptError as exc:
            raise DecryptError(f"{exc}: {WRONG_PASSWORD_HINT}") from exc

    def _step(self) -> bool:
        """Advance one raw (pre-framing) state; False if more bytes are needed."""
        if self._state == "header":
            if len(self._buf) < HEADER_SIZE:
                self._check_header_prefix(bytes(self._buf))
                return False
            self._on_header(self._take(HEADER_SIZE))
        elif self._state == "flag":
            if not self._buf:
                return False
            self._on_flag(self._take(1)[0])
        else:  # "pubkey"
            if len(self._buf) < KEY_SIZE:
                return False
            self._on_public_key(self._take(KEY_SIZE))
        return True

    def _take(self, n: int) -> bytes:
        chunk = bytes(self._buf[:n])
        del self._buf[:n]
        return chunk

    @staticmethod
    def _check_header_prefix(partial: bytes) -> None:
        prefix = partial[: len(PROTOCOL_HEADER)]
        if not PROTOCOL_HEADER.startswith(prefix):
            raise HandshakeError(
                f"remote protocol header not recognised: {partial!r} (not a weave peer)"
            )

    def _on_header(self, header: bytes) -> None:
        self._check_header_prefix(header)
        their_min, their_max = header[5], header[6]
        ours_min, ours_max = self._config.min_version, self._config.max_version
        lo, hi = max(ours_min, their_min), min(ours_max, their_max)
        if lo > hi:
            raise HandshakeError(
                f"protocol version mismatch: ours {ours_min}..{ours_max}, "
                f"theirs {their_min}..{their_max}"
            )
        if hi != 2:
            raise HandshakeError(f"negotiated protocol version {hi} is not supported (need 2)")
        self._version = hi
        if self._config.encrypted:
            self._out += bytes([_FLAG_ENCRYPTED]) + self._public
        else:
            self._out.append(_FLAG_PLAIN)
        self._state = "flag"

    def _on_flag(self, flag: int) -> None:
        if flag == _FLAG_PLAIN:
            if self._config.encrypted:
                raise HandshakeError(
                    "password specified, but peer requested an unencrypted connection"
                )
            self._start_features(None)
        elif flag == _FLAG_ENCRYPTED:
            if not self._config.encrypted:
                raise HandshakeError(
                    "no password specificed, but peer requested an encrypted connection"
                )
            self._state = "pubkey"
        else:
            raise HandshakeError(f"Bad encryption flag {flag}")

    def _on_public_key(self, remote_public: bytes) -> None:
        assert self._config.password is not None
        try:
            key = derive_session_key(remote_public, self._private, self._config.password)
        except RemoteProtocolError as exc:
            raise HandshakeError(f"bad public key from peer: {exc}") from exc
        self._start_features(key)

    def _start_features(self, session_key: bytes | None) -> None:
        self._codec = MessageCodec(session_key, self._config.outbound)
        body = encode_value(FEATURES_TYPE, dict(self._config.features), first_id=65)
        self._out += self._codec.encode(body)
        self._state = "features"

    def _on_bodies(self, bodies: list[bytes]) -> None:
        if not bodies:
            return
        assert self._codec is not None
        features = decode_features(bodies[0])
        self._state = "done"
        self._result = HandshakeResult(
            version=self._version,
            remote_features=features,
            session_key=self._codec.session_key,
            codec=self._codec,
            leftover=bodies[1:],
        )
