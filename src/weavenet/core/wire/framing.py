"""Length-prefixed message framing of the mesh TCP stream (protocol V2).

Every message after the encryption flag is ``uint32 BE length || body``; the
length may not exceed :data:`MAX_TCP_MSG_SIZE` in either direction
(``mesh:protocol_crypto.go`` ``lengthPrefixTCPSender/Receiver``).
"""

from __future__ import annotations

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError

MAX_TCP_MSG_SIZE = 10 * 1024 * 1024
LENGTH_PREFIX_SIZE = 4


class FrameTooLarge(RemoteProtocolError):
    """The peer announced a message longer than :data:`MAX_TCP_MSG_SIZE`."""


def encode_frame(body: bytes) -> bytes:
    """Prefix ``body`` with its uint32 big-endian length."""
    if len(body) > MAX_TCP_MSG_SIZE:
        raise LocalProtocolError(
            f"outgoing message too large: {len(body)} bytes (max {MAX_TCP_MSG_SIZE})"
        )
    return len(body).to_bytes(LENGTH_PREFIX_SIZE, "big") + body


class FrameDecoder:
    """Incremental decoder: feed stream bytes, get complete message bodies back."""

    def __init__(self, max_size: int = MAX_TCP_MSG_SIZE) -> None:
        self._max_size = max_size
        self._buf = bytearray()
        self._need: int | None = None  # body length once the prefix has been read

    @property
    def buffered(self) -> int:
        """Number of bytes received but not yet returned as part of a body."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return every message body it completes (maybe none).

        Raises :class:`FrameTooLarge` as soon as an oversized length prefix has
        been seen, without waiting for (or buffering) its body. After that the
        decoder is unusable: the connection must be closed.
        """
        self._buf += data
        bodies: list[bytes] = []
        while True:
            if self._need is None:
                if len(self._buf) < LENGTH_PREFIX_SIZE:
                    return bodies
                length = int.from_bytes(self._buf[:LENGTH_PREFIX_SIZE], "big")
                if length > self._max_size:
                    self._buf.clear()
                    raise FrameTooLarge(
                        f"incoming message exceeds maximum size: {length} > {self._max_size}"
                    )
                del self._buf[:LENGTH_PREFIX_SIZE]
                self._need = length
            if len(self._buf) < self._need:
                return bodies
            bodies.append(bytes(self._buf[: self._need]))
            del self._buf[: self._need]
            self._need = None
