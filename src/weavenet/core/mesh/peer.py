"""One mesh peer as we know it, and the gob form of topology gossip.

Wire format (``mesh:peers.go:encodePeers/decodeUpdate``): one gob stream holding,
for every peer in the update, a ``peerSummary`` value followed by a
``[]connectionSummary`` value (always present, possibly empty).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.peername import (
    NAME_SIZE,
    UNKNOWN_PEER_NAME,
    format_peer_name,
    peer_name_from_bytes,
    peer_name_to_bytes,
)
from weavenet.core.wire.gob import BOOL, BYTES, STRING, UINT, Encoder, Slice, Struct

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


class ConnectionSummary(msgspec.Struct):
    """One connection as reported by the peer that owns it."""

    remote: int
    remote_tcp_addr: str
    outbound: bool
    established: bool


class Peer(msgspec.Struct):
    """A peer's gossiped state. ``connections`` is keyed by the remote peer's name."""

    name: int
    nickname: str
    uid: int
    version: int
    short_id: int
    has_short_id: bool
    connections: dict[int, ConnectionSummary] = msgspec.field(default_factory=dict)

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


def summary_value(peer: Peer) -> dict[str, object]:
    return {
        "NameByte": peer_name_to_bytes(peer.name),
        "NickName": peer.nickname,
        "UID": peer.uid,
        "Version": peer.version,
        "ShortID": peer.short_id,
        "HasShortID": peer.has_short_id,
    }


def connections_value(peer: Peer) -> list[object]:
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
        out += enc.encode(PEER_SUMMARY, summary_value(peer))
        out += enc.encode(CONNECTION_SUMMARIES, connections_value(peer))
    return bytes(out)


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


def peer_from_summary(summary: object) -> Peer:
    value = _as_dict(summary, "peerSummary")
    return Peer(
        name=_name(value, "peerSummary"),
        nickname=_str(value, "NickName"),
        uid=_uint(value, "UID", _UINT64_MAX),
        version=_uint(value, "Version", _UINT64_MAX),
        short_id=_uint(value, "ShortID", _SHORT_ID_MAX),
        has_short_id=_bool(value, "HasShortID"),
    )


def connections_from_value(conns: object) -> dict[int, ConnectionSummary]:
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
