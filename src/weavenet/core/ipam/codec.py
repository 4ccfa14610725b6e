"""Gob encodings of IPAM gossip, unicasts and persisted state, byte-compatible with Go.

* ``gossipState`` (spec §9.2): :class:`IpamGossip`.  Encoding uses Go's type names, type
  ids (from 65) and field order, so it reproduces Go's bytes (A.8).  Decoding accepts any
  encoder's choices (A.9: other ids, names and field subsets).
* Unicasts: one kind byte, then gob (``0`` space request + Range, ``1`` ring update +
  gossipState, ``2`` space request denied + Range).
* BoltDB values (§9.7): ``ring`` = gob(*Ring), ``ownedAddresses`` = gob(map[string]ownedData),
  ``peername`` = gob(PeerName).

Nil versus empty: Go's gob encoder leaves a *nil* map out of a struct but sends a non-nil
empty map (as count 0; encode.go: "We send zero-length (but non-nil) maps because the
receiver might want to use the map"), and its decoder then makes a non-nil empty map.
So ``paxos=None`` (field absent: a ring request) and ``paxos={}`` (present, empty: a
Paxos update that changes nothing) are distinct on the wire, and both survive a round
trip here.  Zero numbers, empty strings and empty slices are left out of structs as Go
does; nested structs (a zero ProposalID) are always sent; absent fields decode as zero.

Every decoder raises only :class:`IpamCodecError` (a RemoteProtocolError) on bad input.
Lengths are bounded by the bytes present (the gob decoder checks every count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.ipam.address import ADDRESS_MASK, CIDR, Range
from weavenet.core.ipam.paxos import AcceptedValue, GossipState, NodeClaims, NodeID, ProposalID
from weavenet.core.ipam.ring import VERSION_MASK, Entry, Ring
from weavenet.core.wire.gob import INT, STRING, UINT, Decoder, Encoder, Map, Slice, Struct
from weavenet.core.wire.gob_types import BOOL, GobError, GobType

MSG_SPACE_REQUEST = 0
MSG_RING_UPDATE = 1
MSG_SPACE_REQUEST_DENIED = 2

_PEER_NAME_MAX = (1 << 48) - 1
_UINT_MAX = (1 << 64) - 1

# Go's types, with the names Go's encoder puts in CommonType.Name (A.8).
NODE_ID = Struct("", (("Name", UINT), ("UID", UINT)))
PROPOSAL_ID = Struct("ProposalID", (("Round", UINT), ("Proposer", NODE_ID)))
ACCEPTED_VALUE = Struct("AcceptedValue", (("Value", Slice(UINT, "Value")), ("Origin", PROPOSAL_ID)))
NODE_CLAIMS = Struct(
    "", (("Promise", PROPOSAL_ID), ("Accepted", PROPOSAL_ID), ("AcceptedVal", ACCEPTED_VALUE))
)
PAXOS_STATE = Map(NODE_ID, NODE_CLAIMS, "GossipState")
ENTRY = Struct("", (("Token", UINT), ("Peer", UINT), ("Version", UINT), ("Free", UINT)))
RING = Struct(
    "Ring",
    (
        ("Start", UINT),
        ("End", UINT),
        ("Peer", UINT),
        ("Entries", Slice(ENTRY, "entries")),
        ("Seeds", Slice(UINT, "[]mesh.PeerName")),
    ),
)
GOSSIP_STATE = Struct(
    "gossipState",
    (
        ("Now", INT),
        ("Nicknames", Map(UINT, STRING, "map[mesh.PeerName]string")),
        ("Paxos", PAXOS_STATE),
        ("Ring", RING),
    ),
)
RANGE = Struct("Range", (("Start", UINT), ("End", UINT)))
CIDR_TYPE = Struct("CIDR", (("Addr", UINT), ("PrefixLen", INT)))
_OWNED_FIELDS = (("IsContainer", BOOL), ("Cidrs", Slice(CIDR_TYPE, "[]address.CIDR")))
OWNED_DATA = Struct("ownedData", _OWNED_FIELDS)
OWNED_ADDRESSES = Map(STRING, Struct("", _OWNED_FIELDS))

# Go numbers types process-wide; the A.8 vectors came from a process that had numbered the
# gossipState types (65-76) first, so Range got 77.  Any id >= 64 is valid on the wire.
RANGE_FIRST_ID = 77


class IpamCodecError(RemoteProtocolError):
    """Bytes that are not a valid IPAM message or persisted value."""


class IpamGossip(msgspec.Struct, frozen=True):
    """Go's gossipState. ``paxos`` None: field absent (a ring request); ``ring`` None: no ring."""

    now: int
    nicknames: dict[int, str]
    paxos: GossipState | None
    ring: Ring | None


class SpaceRequest(msgspec.Struct, frozen=True):
    range: Range


class RingUpdate(msgspec.Struct, frozen=True):
    state: IpamGossip


class SpaceRequestDenied(msgspec.Struct, frozen=True):
    range: Range


IpamUnicast = SpaceRequest | RingUpdate | SpaceRequestDenied


# -- encoding ------------------------------------------------------------------------------


def _proposal_value(p: ProposalID) -> dict[str, object]:
    return {"Round": p.round, "Proposer": {"Name": p.proposer.name, "UID": p.proposer.uid}}


def _claims_value(c: NodeClaims) -> dict[str, object]:
    accepted = {
        "Value": list(c.accepted_val.value),
        "Origin": _proposal_value(c.accepted_val.origin),
    }
    return {
        "Promise": _proposal_value(c.promise),
        "Accepted": _proposal_value(c.accepted),
        "AcceptedVal": accepted,
    }


def _ring_value(ring: Ring) -> dict[str, object]:
    entries = [
        {"Token": e.token, "Peer": e.peer, "Version": e.version, "Free": e.free}
        for e in ring.entries
    ]
    return {
        "Start": ring.start,
        "End": ring.end,
        "Peer": ring.peer,
        "Entries": entries,
        "Seeds": list(ring.seeds),
    }


def encode_gossip(state: IpamGossip) -> bytes:
    """gob(gossipState): type definitions then the value, as Go's encoder writes them."""
    value: dict[str, object] = {
        "Now": state.now,
        "Nicknames": dict(sorted(state.nicknames.items())),
    }
    if state.paxos is not None:
        value["Paxos"] = {
            (("Name", node.name), ("UID", node.uid)): _claims_value(claims)
            for node, claims in sorted(state.paxos.items())
        }
    if state.ring is not None:
        value["Ring"] = _ring_value(state.ring)
    return Encoder().encode(GOSSIP_STATE, value)


def encode_range(r: Range) -> bytes:
    return Encoder(RANGE_FIRST_ID).encode(RANGE, {"Start": r.start, "End": r.end})


def encode_unicast(msg: IpamUnicast) -> bytes:
    if isinstance(msg, SpaceRequest):
        return bytes([MSG_SPACE_REQUEST]) + encode_range(msg.range)
    if isinstance(msg, SpaceRequestDenied):
        return bytes([MSG_SPACE_REQUEST_DENIED]) + encode_range(msg.range)
    return bytes([MSG_RING_UPDATE]) + encode_gossip(msg.state)


def encode_ring(ring: Ring) -> bytes:
    """gob(*Ring): the value of the persisted ``ring`` key."""
    return Encoder().encode(RING, _ring_value(ring))


def _owned_value(is_container: bool, cidrs: Sequence[CIDR]) -> dict[str, object]:
    return {
        "IsContainer": is_container,
        "Cidrs": [{"Addr": c.addr, "PrefixLen": c.prefix_len} for c in cidrs],
    }


def encode_owned(owned: Mapping[str, tuple[bool, Sequence[CIDR]]]) -> bytes:
    """gob(map[string]ownedData): the value of the persisted ``ownedAddresses`` key."""
    value = {ident: _owned_value(flag, cidrs) for ident, (flag, cidrs) in sorted(owned.items())}
    return Encoder().encode(OWNED_ADDRESSES, value)


def encode_owned_data(is_container: bool, cidrs: Sequence[CIDR]) -> bytes:
    """gob(ownedData) of one ident, for stores that keep one key per ident."""
    return Encoder().encode(OWNED_DATA, _owned_value(is_container, cidrs))


def encode_peer_name(name: int) -> bytes:
    """gob(PeerName): the value of the persisted ``peername`` key."""
    return Encoder().encode(UINT, name)


# -- decoding ------------------------------------------------------------------------------


def _decode(data: bytes, typ: GobType, what: str) -> object:
    """One gob value; trailing bytes are ignored, as Go's Decoder.Decode reads one value."""
    try:
        return Decoder(data).decode(typ, fill_zero=False)
    except GobError as exc:
        raise IpamCodecError(f"bad {what}: {exc}") from exc


def _shape(ok: bool, what: str) -> None:
    """The gob decoder shapes values by the type asked for; this guards that promise."""
    if not ok:
        raise IpamCodecError(f"bad {what}: unexpected value shape")


def _struct(value: object) -> Mapping[str, object]:
    if isinstance(value, tuple):  # a struct used as a map key
        value = dict(value)
    _shape(isinstance(value, dict), "struct")
    assert isinstance(value, dict)
    return value


def _uint(fields: Mapping[str, object], name: str, limit: int, what: str) -> int:
    value = fields.get(name, 0)
    _shape(isinstance(value, int), what)
    assert isinstance(value, int)
    if not 0 <= value <= limit:
        raise IpamCodecError(f"bad {what}: {name} {value} out of range")
    return value


def _name(value: object, what: str) -> int:
    _shape(isinstance(value, int), what)
    assert isinstance(value, int)
    if not 0 <= value <= _PEER_NAME_MAX:
        raise IpamCodecError(f"bad {what}: peer name {value:#x} is longer than 48 bits")
    return value


def _list(fields: Mapping[str, object], name: str) -> list[object]:
    value = fields.get(name, [])
    _shape(isinstance(value, list), name)
    assert isinstance(value, list)
    return value


def _ring_from(value: object) -> Ring:
    f = _struct(value)
    entries = []
    for item in _list(f, "Entries"):
        e = _struct(item)
        entries.append(
            Entry(
                _uint(e, "Token", ADDRESS_MASK, "ring entry"),
                _name(e.get("Peer", 0), "ring entry"),
                _uint(e, "Version", VERSION_MASK, "ring entry"),
                _uint(e, "Free", ADDRESS_MASK, "ring entry"),
            )
        )
    return Ring(
        _uint(f, "Start", ADDRESS_MASK, "ring"),
        _uint(f, "End", ADDRESS_MASK, "ring"),
        _name(f.get("Peer", 0), "ring"),
        entries,
        [_name(seed, "ring seeds") for seed in _list(f, "Seeds")],
    )


def _proposal_from(value: object) -> ProposalID:
    f = _struct(value if value is not None else {})
    proposer = _struct(f.get("Proposer", {}))
    node = NodeID(
        _name(proposer.get("Name", 0), "paxos"), _uint(proposer, "UID", _UINT_MAX, "paxos")
    )
    return ProposalID(_uint(f, "Round", _UINT_MAX, "paxos"), node)


def _claims_from(value: object) -> NodeClaims:
    f = _struct(value)
    accepted = _struct(f.get("AcceptedVal", {}))
    names = tuple(_name(n, "paxos value") for n in _list(accepted, "Value"))
    return NodeClaims(
        _proposal_from(f.get("Promise")),
        _proposal_from(f.get("Accepted")),
        AcceptedValue(names, _proposal_from(accepted.get("Origin"))),
    )


def _paxos_from(value: object) -> GossipState:
    _shape(isinstance(value, dict), "paxos")
    assert isinstance(value, dict)
    state: GossipState = {}
    for key, claims in value.items():
        k = _struct(key)
        node = NodeID(_name(k.get("Name", 0), "paxos"), _uint(k, "UID", _UINT_MAX, "paxos"))
        state[node] = _claims_from(claims)
    return state


def decode_gossip(data: bytes) -> IpamGossip:
    """gob(gossipState) from any encoder; IpamCodecError if malformed."""
    f = _struct(_decode(data, GOSSIP_STATE, "IPAM gossip"))
    nick_map = f.get("Nicknames", {})
    _shape(isinstance(nick_map, dict), "nicknames")
    assert isinstance(nick_map, dict)
    nicknames = {_name(k, "nicknames"): str(v) for k, v in nick_map.items()}
    now = f.get("Now", 0)
    _shape(isinstance(now, int), "Now")
    assert isinstance(now, int)
    paxos = _paxos_from(f["Paxos"]) if "Paxos" in f else None
    ring = _ring_from(f["Ring"]) if "Ring" in f else None
    return IpamGossip(now, nicknames, paxos, ring)


def decode_range(data: bytes) -> Range:
    f = _struct(_decode(data, RANGE, "IPAM range"))
    return Range(_uint(f, "Start", ADDRESS_MASK, "range"), _uint(f, "End", ADDRESS_MASK, "range"))


def decode_unicast(data: bytes) -> IpamUnicast:
    """A unicast on the IPAM channel: kind byte then body (Go panics on empty ones)."""
    if not data:
        raise IpamCodecError("empty IPAM unicast message")
    kind, body = data[0], data[1:]
    if kind == MSG_SPACE_REQUEST:
        return SpaceRequest(decode_range(body))
    if kind == MSG_SPACE_REQUEST_DENIED:
        return SpaceRequestDenied(decode_range(body))
    if kind == MSG_RING_UPDATE:
        return RingUpdate(decode_gossip(body))
    raise IpamCodecError(f"unknown IPAM unicast message kind {kind}")


def decode_ring(data: bytes) -> Ring:
    """A persisted ring; IpamCodecError if malformed or if it breaks the ring invariants."""
    ring = _ring_from(_decode(data, RING, "persisted ring"))
    error = ring.invariant_error()
    if error is not None:
        raise IpamCodecError(f"bad persisted ring: {error}")
    return ring


def _owned_from(value: object, what: str) -> tuple[bool, list[CIDR]]:
    f = _struct(value)
    cidrs = []
    for item in _list(f, "Cidrs"):
        c = _struct(item)
        prefix = c.get("PrefixLen", 0)
        _shape(isinstance(prefix, int), what)
        assert isinstance(prefix, int)
        if not 0 <= prefix <= 32:
            raise IpamCodecError(f"bad {what}: prefix length {prefix}")
        cidrs.append(CIDR(_uint(c, "Addr", ADDRESS_MASK, what), prefix))
    return bool(f.get("IsContainer", False)), cidrs


def decode_owned(data: bytes) -> dict[str, tuple[bool, list[CIDR]]]:
    value = _decode(data, OWNED_ADDRESSES, "owned addresses")
    _shape(isinstance(value, dict), "owned addresses")
    assert isinstance(value, dict)
    return {str(ident): _owned_from(v, "owned addresses") for ident, v in value.items()}


def decode_owned_data(data: bytes) -> tuple[bool, list[CIDR]]:
    return _owned_from(_decode(data, OWNED_DATA, "owned data"), "owned data")


def decode_peer_name(data: bytes) -> int:
    return _name(_decode(data, UINT, "persisted peer name"), "persisted peer name")
