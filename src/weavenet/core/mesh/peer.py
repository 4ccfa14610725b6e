"""One mesh peer as we know it, and the gob form of topology gossip.

Wire format (``mesh:peers.go:encodePeers/decodeUpdate``): one gob stream holding,
for every peer in the update, a ``peerSummary`` value followed by a
``[]connectionSummary`` value (always present, possibly empty).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.peername import (
    NAME_SIZE,
    UNKNOWN_PEER_NAME,
    format_peer_name,
    peer_name_from_bytes,
    peer_name_to_bytes,
)
from weavenet.core.wire.gob import BOOL, BYTES, STRING, UINT, Decoder, Encoder, Slice, Struct

# Bounds on the work one received update may cause.
MAX_UPDATE_PEERS = 10_000
MAX_PEER_CONNECTIONS = 10_000

_UINT64_MAX = (1 << 64) - 1
_SHORT_ID_MAX = 0xFFFF  # PeerShortID is a Go uint16 (only 12 bits are used)
SHORT_ID_BITS = 12

PEER_SUMMARY = Struct(
    "peerSummary",
    (
        ("NameByte", BYTES),
        ("NickName", STRING),
        ("UID", UINT),
        ("Version", UINT),
        ("ShortID", UINT),
        ("HasShortID", BOOL),
    ),
)
CONNECTION_SUMMARY = Struct(
    "connectionSummary",
    (
        ("NameByte", BYTES),
        ("RemoteTCPAddr", STRING),
        ("Outbound", BOOL),
        ("Established", BOOL),
    ),
)
CONNECTION_SUMMARIES = Slice(CONNECTION_SUMMARY)


class TopologyError(RemoteProtocolError):
    """A topology update from a peer is malformed."""


@dataclass
class ConnectionSummary:
    """One connection as reported by the peer that owns it."""

    remote: int
    remote_tcp_addr: str
    outbound: bool
    established: bool


@dataclass
class Peer:
    """A peer's gossiped state. ``connections`` is keyed by the remote peer's name."""

    name: int
    nickname: str
    uid: int
    version: int
    short_id: int
    has_short_id: bool
    connections: dict[int, ConnectionSummary] = field(default_factory=dict)

    @classmethod
    def placeholder(cls, name: int) -> Peer:
        """A peer only known from someone's connection list (UID 0, Version 0)."""
        return cls(name, "", 0, 0, 0, False)

    def __str__(self) -> str:
        return f"{format_peer_name(self.name)}({self.nickname})"


def supersedes(new: Peer, old: Peer) -> bool:
    """Whether a received entry ``new`` replaces our record ``old`` (§5.2)."""
    if new.version != old.version:
        return new.version > old.version
    if new.uid != old.uid:
        return new.uid > old.uid
    return new.has_short_id and not old.has_short_id


# --- encoding ---------------------------------------------------------------


def _summary_value(peer: Peer) -> dict[str, object]:
    return {
        "NameByte": peer_name_to_bytes(peer.name),
        "NickName": peer.nickname,
        "UID": peer.uid,
        "Version": peer.version,
        "ShortID": peer.short_id,
        "HasShortID": peer.has_short_id,
    }


def _connections_value(peer: Peer) -> list[object]:
    return [
        {
            "NameByte": peer_name_to_bytes(conn.remote),
            "RemoteTCPAddr": conn.remote_tcp_addr,
            "Outbound": conn.outbound,
            "Established": conn.established,
        }
        for _, conn in sorted(peer.connections.items())
    ]


def encode_peers(peers: Iterable[Peer], first_id: int = 65) -> bytes:
    """One gob stream of (peerSummary, []connectionSummary) pairs, in the given order."""
    enc = Encoder(first_id=first_id)
    out = bytearray()
    for peer in peers:
        out += enc.encode(PEER_SUMMARY, _summary_value(peer))
        out += enc.encode(CONNECTION_SUMMARIES, _connections_value(peer))
    return bytes(out)


class EncodedPeers:
    """Caches each peer's encoded value messages, so that a topology payload is a join of
    cached bytes: full-state gossip goes down every new connection. The output is the
    exact stream :func:`encode_peers` (first_id 65) writes: type definitions go just
    before their first use, as Go's encoder puts them."""

    def __init__(self) -> None:
        self._primed = Encoder()  # has sent the type definitions: encodes values only
        placeholder = Peer.placeholder(1)
        self._encode_values(placeholder)  # sends the definitions: later calls are values only
        fresh = Encoder()
        summary, connections = self._encode_values(placeholder)
        self._summary_defs = fresh.encode(PEER_SUMMARY, _summary_value(placeholder))[
            : -len(summary)
        ]
        self._connection_defs = fresh.encode(CONNECTION_SUMMARIES, _connections_value(placeholder))[
            : -len(connections)
        ]
        self._cache: dict[int, tuple[tuple[object, ...], bytes, bytes]] = {}

    def _encode_values(self, peer: Peer) -> tuple[bytes, bytes]:
        return (
            self._primed.encode(PEER_SUMMARY, _summary_value(peer)),
            self._primed.encode(CONNECTION_SUMMARIES, _connections_value(peer)),
        )

    def encode(self, peers: list[Peer]) -> bytes:
        if not peers:
            return b""
        parts = []
        for index, peer in enumerate(peers):
            summary, connections = self._values(peer)
            if index == 0:
                parts += [self._summary_defs, summary, self._connection_defs, connections]
            else:
                parts += [summary, connections]
        return b"".join(parts)

    def _values(self, peer: Peer) -> tuple[bytes, bytes]:
        key = (
            peer.uid,
            peer.version,
            peer.nickname,
            peer.short_id,
            peer.has_short_id,
            len(peer.connections),
        )
        hit = self._cache.get(peer.name)
        if hit is not None and hit[0] == key:
            return hit[1], hit[2]
        summary, connections = self._encode_values(peer)
        self._cache[peer.name] = (key, summary, connections)
        return summary, connections

    def forget(self, name: int) -> None:
        self._cache.pop(name, None)


# --- decoding ---------------------------------------------------------------


def _str(value: dict[str, object], key: str) -> str:
    item = value.get(key)
    if not isinstance(item, str):
        raise TopologyError(f"topology field {key} is not a string")
    return item


def _bool(value: dict[str, object], key: str) -> bool:
    item = value.get(key)
    if not isinstance(item, bool):
        raise TopologyError(f"topology field {key} is not a bool")
    return item


def _uint(value: dict[str, object], key: str, limit: int) -> int:
    item = value.get(key)
    if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item <= limit:
        raise TopologyError(f"topology field {key} is not an unsigned int <= {limit}: {item!r}")
    return item


def _name(value: dict[str, object], what: str) -> int:
    raw = value.get("NameByte")
    if not isinstance(raw, bytes) or len(raw) != NAME_SIZE:
        size = len(raw) if isinstance(raw, bytes) else "no"
        raise TopologyError(f"{what} NameByte must be {NAME_SIZE} bytes, got {size}")
    name = peer_name_from_bytes(raw)
    if name == UNKNOWN_PEER_NAME:
        raise TopologyError(f"{what} has the reserved peer name 00:00:00:00:00:00")
    return name


def _as_dict(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise TopologyError(f"{what} is not a struct")
    return value


def _decode_peer(summary: object) -> Peer:
    value = _as_dict(summary, "peerSummary")
    return Peer(
        name=_name(value, "peerSummary"),
        nickname=_str(value, "NickName"),
        uid=_uint(value, "UID", _UINT64_MAX),
        version=_uint(value, "Version", _UINT64_MAX),
        short_id=_uint(value, "ShortID", _SHORT_ID_MAX),
        has_short_id=_bool(value, "HasShortID"),
    )


def _decode_connections(conns: object) -> dict[int, ConnectionSummary]:
    if not isinstance(conns, list):
        raise TopologyError("connection list is not a slice")
    if len(conns) > MAX_PEER_CONNECTIONS:
        raise TopologyError(f"too many connections in one peer entry: {len(conns)}")
    result: dict[int, ConnectionSummary] = {}
    for item in conns:
        value = _as_dict(item, "connectionSummary")
        remote = _name(value, "connectionSummary")
        result[remote] = ConnectionSummary(  # a repeated remote: the last one wins, as in Go
            remote,
            _str(value, "RemoteTCPAddr"),
            _bool(value, "Outbound"),
            _bool(value, "Established"),
        )
    return result


def decode_update(
    data: bytes, unchanged: Callable[[Peer], bool] | None = None
) -> tuple[list[Peer], set[int]]:
    """Decode a whole topology payload into peer records (with their connections).

    Entries for which ``unchanged(summary)`` holds have their connection list skipped
    undecoded (they are returned by name only): most gossip repeats what we know.
    Raises TopologyError (or GobError) on malformed input; never returns partial data.
    """
    dec = Decoder(data)
    peers: list[Peer] = []
    skipped: set[int] = set()
    while not dec.at_end():
        if len(peers) + len(skipped) >= MAX_UPDATE_PEERS:
            raise TopologyError(f"topology update holds more than {MAX_UPDATE_PEERS} peers")
        peer = _decode_peer(dec.decode(PEER_SUMMARY))
        if dec.at_end():
            raise TopologyError(f"peer {peer} has no connection list")
        if unchanged is not None and unchanged(peer):
            dec.skip()
            skipped.add(peer.name)
            continue
        peer.connections = _decode_connections(dec.decode(CONNECTION_SUMMARIES))
        peers.append(peer)
    return peers, skipped
