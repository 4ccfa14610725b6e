"""Topology payload coding for the router: cached encoding, skipping of known entries, and
straight-line gob coding of connection lists, the bulk of every topology payload.

A 50-peer full mesh gossips 2,450 connection summaries per full state; the generic gob
codec spends microseconds per field on them. These functions produce and accept exactly
what the generic codec does (a property test holds them to it), for the one wire layout
every Go and Python peer uses; anything else falls back to the generic decoder.
"""

from __future__ import annotations

from collections.abc import Callable

from weavenet.core.mesh.peer import (
    CONNECTION_SUMMARIES,
    MAX_PEER_CONNECTIONS,
    MAX_UPDATE_PEERS,
    PEER_SUMMARY,
    ConnectionSummary,
    Peer,
    TopologyError,
    connections_from_value,
    connections_value,
    peer_from_summary,
    summary_value,
)
from weavenet.core.peername import NAME_SIZE, UNKNOWN_PEER_NAME
from weavenet.core.wire.gob import Decoder, Encoder
from weavenet.core.wire.gob_decode import Wire, WSlice, WStruct
from weavenet.core.wire.gob_types import put_uint

# field names and gob ids ([]byte 5, string 6, bool 1) of mesh's connectionSummary
CONNECTION_FIELDS = (("NameByte", 5), ("RemoteTCPAddr", 6), ("Outbound", 1), ("Established", 1))


# mesh's peerSummary: NameByte []byte, NickName string, UID/Version/ShortID uint, HasShortID bool
SUMMARY_FIELDS = (
    ("NameByte", 5),
    ("NickName", 6),
    ("UID", 3),
    ("Version", 3),
    ("ShortID", 3),
    ("HasShortID", 1),
)
_SHORT_ID_MAX = 0xFFFF


def parse_summary(body: bytes) -> Peer:
    """Parse a top-level peerSummary value (fields, then the 0 terminator)."""
    cur = _Cursor(body)
    values: list[object] = [b"", "", 0, 0, 0, False]
    field = -1
    try:
        while (delta := cur.uint()) != 0:
            field += delta
            if field == 0:
                values[0] = cur.bytes(cur.uint())
            elif field == 1:
                values[1] = cur.bytes(cur.uint()).decode("utf-8", "surrogateescape")
            elif field in (2, 3, 4):
                values[field] = cur.uint()
            elif field == 5:
                values[5] = cur.uint() != 0
            else:
                raise TopologyError(f"unknown peerSummary field {field}")
    except IndexError as exc:
        raise TopologyError("truncated peerSummary") from exc
    if cur.pos != len(body):
        raise TopologyError("extra bytes after a peerSummary")
    short_id = values[4]
    assert isinstance(short_id, int)
    if short_id > _SHORT_ID_MAX:
        raise TopologyError(f"peerSummary ShortID {short_id} does not fit 16 bits")
    return Peer(
        _checked_name(values[0], "peerSummary"),
        str(values[1]),
        int(values[2]),  # type: ignore[call-overload]
        int(values[3]),  # type: ignore[call-overload]
        short_id,
        bool(values[5]),
    )


def _checked_name(raw: object, what: str) -> int:
    assert isinstance(raw, bytes)
    if len(raw) != NAME_SIZE:
        raise TopologyError(f"{what} NameByte must be {NAME_SIZE} bytes, got {len(raw)}")
    name = int.from_bytes(raw, "big")
    if name == UNKNOWN_PEER_NAME:
        raise TopologyError(f"{what} has the reserved peer name 00:00:00:00:00:00")
    return name


def is_connection_list(wire: Wire | None, elem: Wire | None) -> bool:
    return (
        isinstance(wire, WSlice)
        and isinstance(elem, WStruct)
        and (elem.fields == CONNECTION_FIELDS)
    )


def encode_connection_list(type_id_bytes: bytes, conns: list[ConnectionSummary]) -> bytes:
    """The whole value message (length prefix included) for a sorted connection list."""
    body = bytearray(type_id_bytes)
    body.append(0)  # singleton
    put_uint(body, len(conns))
    for conn in conns:
        body += b"\x01\x06" + conn.remote.to_bytes(NAME_SIZE, "big")
        field = 0
        if conn.remote_tcp_addr:
            addr = conn.remote_tcp_addr.encode("utf-8", "surrogateescape")
            body.append(1)
            put_uint(body, len(addr))
            body += addr
            field = 1
        if conn.outbound:
            body += bytes((2 - field, 1))
            field = 2
        if conn.established:
            body += bytes((3 - field, 1))
        body.append(0)
    out = bytearray()
    put_uint(out, len(body))
    return bytes(out + body)


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        if b < 0x80:
            return b
        n = 0x100 - b
        if n > 8:
            raise TopologyError("invalid gob uint in connection list")
        value = int.from_bytes(self.bytes(n), "big")
        return value

    def bytes(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise TopologyError("connection list runs past its message")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk


def parse_connection_list(body: bytes, limit: int) -> dict[int, ConnectionSummary]:
    """Parse a value message body (after the type id) of the canonical layout."""
    cur = _Cursor(body)
    try:
        if cur.uint() != 0:
            raise TopologyError("connection list is not a singleton value")
        count = cur.uint()
        if count > limit or count > len(body):
            raise TopologyError(f"too many connections in one peer entry: {count}")
        result: dict[int, ConnectionSummary] = {}
        for _ in range(count):
            conn = _parse_usual_element(cur) or _parse_element(cur)
            result[conn.remote] = conn  # a repeated remote: the last one wins, as in Go
    except IndexError as exc:
        raise TopologyError("truncated connection list") from exc
    if cur.pos != len(body):
        raise TopologyError("extra bytes after a connection list")
    return result


def _flags(data: bytes, end: int) -> tuple[bool, bool, int] | None:
    """The field deltas after the address: (outbound, established, bytes taken); None for
    any other shape. Read byte by byte: slicing and dict look-ups cost more."""
    first = data[end]
    if first == 0:
        return False, False, 1
    if data[end + 1] != 1:
        return None
    if first == 2:
        return (False, True, 3) if data[end + 2] == 0 else None
    if first != 1:
        return None
    third = data[end + 2]
    if third == 0:
        return True, False, 3
    if third == 1 and data[end + 3] == 1 and data[end + 4] == 0:
        return True, True, 5
    return None


def _parse_usual_element(cur: _Cursor) -> ConnectionSummary | None:
    """The shape every peer sends (name, short address, flags), without per-field calls;
    None (cursor untouched) for anything else."""
    data, pos = cur.data, cur.pos
    if data[pos] != 1 or data[pos + 1] != 6 or data[pos + 8] != 1 or data[pos + 9] >= 0x80:
        return None
    end = pos + 10 + data[pos + 9]
    if end >= len(data):
        return None
    flags = _flags(data, end)
    if flags is None:
        return None
    remote = int.from_bytes(data[pos + 2 : pos + 8], "big")
    if remote == UNKNOWN_PEER_NAME:
        return None
    cur.pos = end + flags[2]
    addr = data[pos + 10 : end].decode("utf-8", "surrogateescape")
    return ConnectionSummary(remote, addr, flags[0], flags[1])


def _parse_element(cur: _Cursor) -> ConnectionSummary:
    values: list[object] = [b"", "", False, False]
    field = -1
    while True:
        delta = cur.uint()
        if delta == 0:
            break
        field += delta
        if field == 0:
            values[0] = cur.bytes(cur.uint())
        elif field == 1:
            values[1] = cur.bytes(cur.uint()).decode("utf-8", "surrogateescape")
        elif field in (2, 3):
            values[field] = cur.uint() != 0
        else:
            raise TopologyError(f"unknown connectionSummary field {field}")
    remote = _checked_name(values[0], "connectionSummary")
    return ConnectionSummary(remote, str(values[1]), bool(values[2]), bool(values[3]))


def decode_update(
    data: bytes, unchanged: Callable[[Peer], bool] | None = None
) -> tuple[list[Peer], set[int]]:
    """Decode a whole topology payload into peer records (with their connections).

    Entries for which ``unchanged(summary)`` holds have their connection list skipped
    undecoded (they are returned by name only): most gossip repeats what we know.
    Raises TopologyError (or GobError) on malformed input; never returns partial data.
    """
    dec = Decoder(data)
    layouts = _Layouts(dec)
    peers: list[Peer] = []
    skipped: set[int] = set()
    while not dec.at_end():
        if len(peers) + len(skipped) >= MAX_UPDATE_PEERS:
            raise TopologyError(f"topology update holds more than {MAX_UPDATE_PEERS} peers")
        peer = _decode_summary(dec, layouts)
        if dec.at_end():
            raise TopologyError(f"peer {peer} has no connection list")
        if unchanged is not None and unchanged(peer):
            dec.skip_to(dec.next_span()[2])
            skipped.add(peer.name)
            continue
        peer.connections = _decode_connection_list(dec, layouts)
        peers.append(peer)
    return peers, skipped


class _Layouts:
    """Which type ids of one stream have the canonical layouts (asked once per id)."""

    def __init__(self, dec: Decoder) -> None:
        self._dec = dec
        self._summary: dict[int, bool] = {}
        self._connections: dict[int, bool] = {}

    def summary(self, tid: int) -> bool:
        known = self._summary.get(tid)
        if known is None:
            wire = self._dec.wire_type(tid)
            known = self._summary[tid] = isinstance(wire, WStruct) and (
                wire.fields == SUMMARY_FIELDS
            )
        return known

    def connections(self, tid: int) -> bool:
        known = self._connections.get(tid)
        if known is None:
            wire = self._dec.wire_type(tid)
            elem = self._dec.wire_type(wire.elem) if isinstance(wire, WSlice) else None
            known = self._connections[tid] = is_connection_list(wire, elem)
        return known


def _decode_summary(dec: Decoder, layouts: _Layouts) -> Peer:
    tid, start, end = dec.next_span()
    if layouts.summary(tid):
        dec.skip_to(end)
        return parse_summary(dec.data[start:end])
    return peer_from_summary(dec.decode(PEER_SUMMARY))


def _type_id_bytes(empty_list_message: bytes) -> bytes:
    """The type-id bytes of a value message holding an empty slice: len | id | 00 | 00."""
    length_size = 1 if empty_list_message[0] < 0x80 else 1 + (0x100 - empty_list_message[0])
    return empty_list_message[length_size:-2]


def _decode_connection_list(dec: Decoder, layouts: _Layouts) -> dict[int, ConnectionSummary]:
    tid, start, end = dec.next_span()
    if layouts.connections(tid):
        dec.skip_to(end)
        return parse_connection_list(dec.data[start:end], MAX_PEER_CONNECTIONS)
    return connections_from_value(dec.decode(CONNECTION_SUMMARIES))


class EncodedPeers:
    """Caches each peer's encoded value messages, so that a topology payload is a join of
    cached bytes: full-state gossip goes down every new connection. The output is the
    exact stream :func:`encode_peers` (first_id 65) writes: type definitions go just
    before their first use, as Go's encoder puts them."""

    def __init__(self) -> None:
        self._primed = Encoder()  # has sent the type definitions: encodes values only
        self._list_type_id: bytes | None = None
        placeholder = Peer.placeholder(1)
        self._encode_values(placeholder)  # sends the definitions: later calls are values only
        fresh = Encoder()
        summary, connections = self._encode_values(placeholder)
        self._summary_defs = fresh.encode(PEER_SUMMARY, summary_value(placeholder))[: -len(summary)]
        self._connection_defs = fresh.encode(CONNECTION_SUMMARIES, connections_value(placeholder))[
            : -len(connections)
        ]
        self._cache: dict[int, tuple[tuple[object, ...], bytes, bytes]] = {}
        self._list_type_id = _type_id_bytes(connections)

    def _encode_values(self, peer: Peer) -> tuple[bytes, bytes]:
        summary = self._primed.encode(PEER_SUMMARY, summary_value(peer))
        if self._list_type_id is None:
            return summary, self._primed.encode(CONNECTION_SUMMARIES, connections_value(peer))
        conns = [c for _, c in sorted(peer.connections.items())]
        return summary, encode_connection_list(self._list_type_id, conns)

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
