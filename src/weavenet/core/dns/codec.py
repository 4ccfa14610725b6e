"""gob coding of the "nameserver" channel payload (spec weave-wire.md §10.1, A.10).

Every gossip kind carries one fresh gob stream of Go's ``GossipData{Timestamp int64;
Entries []Entry}``.  We emit Go's bytes (entries in Go's case-sensitive order) and refuse
payloads a Go peer would panic on (duplicate entries) or could not hold (Addr > 32 bits).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from weavenet.core.dns.entries import Entry, merge_entry
from weavenet.core.errors import RemoteProtocolError
from weavenet.core.wire.gob import INT, STRING, UINT, Encoder, GobError, Slice, Struct, decode_value

ENTRY = Struct(
    "Entry",
    (
        ("ContainerID", STRING),
        ("Origin", UINT),
        ("Addr", UINT),
        ("Hostname", STRING),
        ("Version", INT),
        ("Tombstone", INT),
    ),
)
ENTRIES = Slice(ENTRY, "Entries")
GOSSIP_DATA = Struct("GossipData", (("Timestamp", INT), ("Entries", ENTRIES)))

MAX_ADDR = 0xFFFFFFFF
MAX_ORIGIN = (1 << 64) - 1


class DnsGossipError(RemoteProtocolError):
    """A nameserver gossip payload we cannot accept (malformed, or fatal to Go peers)."""


def encode_gossip(timestamp: int, entries: Iterable[Entry]) -> bytes:
    """Go's bytes for GossipData: entries sorted case-sensitively, as Go's Encode does."""
    ordered = sorted(entries, key=Entry.wire_order)
    value = {
        "Timestamp": timestamp,
        "Entries": [
            {
                "ContainerID": e.container_id,
                "Origin": e.origin,
                "Addr": e.addr,
                "Hostname": e.hostname,
                "Version": e.version,
                "Tombstone": e.tombstone,
            }
            for e in ordered
        ],
    }
    return Encoder().encode(GOSSIP_DATA, value)


def decode_gossip(data: bytes) -> tuple[int, list[Entry]]:
    """(Timestamp, entries in storage order); DnsGossipError on anything malformed."""
    try:
        value = decode_value(data, GOSSIP_DATA)
    except GobError as exc:
        raise DnsGossipError(f"bad nameserver gossip: {exc}") from exc
    assert isinstance(value, dict)
    timestamp = value["Timestamp"]
    raw_entries = value["Entries"]
    assert isinstance(timestamp, int) and isinstance(raw_entries, list)
    entries = [_entry(raw) for raw in raw_entries]
    _check_unique(entries)
    entries.sort(key=Entry.store_order)
    return timestamp, entries


def _entry(raw: object) -> Entry:
    assert isinstance(raw, dict)
    entry = Entry(
        container_id=raw["ContainerID"],
        origin=raw["Origin"],
        addr=raw["Addr"],
        hostname=raw["Hostname"],
        version=raw["Version"],
        tombstone=raw["Tombstone"],
    )
    if entry.addr > MAX_ADDR:
        raise DnsGossipError(f"bad nameserver gossip: address {entry.addr} exceeds 32 bits")
    return entry


def _check_unique(entries: list[Entry]) -> None:
    seen: set[tuple[str, int, int, str]] = set()
    for entry in entries:
        if entry.key in seen:
            raise DnsGossipError(
                f"bad nameserver gossip: duplicate entry {entry.hostname} -> "
                f"{entry.addr} of container {entry.container_id!r}"
            )
        seen.add(entry.key)


class DnsGossipData(msgspec.Struct, frozen=True):
    """GossipData for the router's send queues; merging is the entry CRDT merge."""

    timestamp: int
    entries: tuple[Entry, ...]

    def encode(self) -> list[bytes]:
        return [encode_gossip(self.timestamp, self.entries)]

    def merge(self, other: object) -> DnsGossipData:
        assert isinstance(other, DnsGossipData)
        return DnsGossipData(
            max(self.timestamp, other.timestamp), merge_entries(self.entries, other.entries)
        )


def merge_entries(a: Iterable[Entry], b: Iterable[Entry]) -> tuple[Entry, ...]:
    """The CRDT merge of two entry sets, in storage order, without duplicates."""
    merged: dict[tuple[str, int, int, str], Entry] = {}
    for entry in (*a, *b):
        current = merged.get(entry.key)
        merged[entry.key] = entry if current is None else merge_entry(current, entry)
    return tuple(sorted(merged.values(), key=Entry.store_order))
