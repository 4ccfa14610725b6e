"""The WeaveDNS entry CRDT (Go nameserver/entry.go, spec weave-wire.md §10).

An entry is identified by (ContainerID, Origin, Addr, Hostname); Version and Tombstone
are its state.  Merging keeps, per identity, the larger (Version, Tombstone) pair, so the
merge is commutative, associative and idempotent.  Only the origin peer changes its own
entries (add, tombstone); everybody drops the entries of a peer that left the topology.
Hostnames are stored as given; lookups are case-insensitive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec
import msgspec.structs

TOMBSTONE_TIMEOUT = 30 * 60  # seconds a tombstone is kept (Go tombstoneTimeout)

EntryKey = tuple[str, int, int, str]  # (container_id, origin, addr, hostname)


class Entry(msgspec.Struct, frozen=True):
    container_id: str
    origin: int
    addr: int  # IPv4 as uint32
    hostname: str  # FQDN with trailing dot, case as registered
    version: int = 0
    tombstone: int = 0  # Unix time of deletion, 0 = live

    @property
    def key(self) -> EntryKey:
        return (self.container_id, self.origin, self.addr, self.hostname)

    @property
    def live(self) -> bool:
        return self.tombstone == 0

    def wire_order(self) -> tuple[str, int, str, int]:
        """Go's case-sensitive gossip order: Hostname, Origin, ContainerID, Addr."""
        return (self.hostname, self.origin, self.container_id, self.addr)

    def store_order(self) -> tuple[str, int, str, int, str]:
        """Go's case-insensitive storage order (the exact hostname breaks ties)."""
        return (self.hostname.lower(), self.origin, self.container_id, self.addr, self.hostname)

    def supersedes(self, other: Entry) -> bool:
        """True when merging self into other changes other (Go Entry.merge)."""
        if self.version != other.version:
            return self.version > other.version
        return self.tombstone > other.tombstone

    def tombstoned(self, now: float) -> Entry:
        # 0 means live, so a clock at the epoch (simulations) still marks the deletion
        return msgspec.structs.replace(self, version=self.version + 1, tombstone=max(1, int(now)))


def format_ip(addr: int) -> str:
    return ".".join(str((addr >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def merge_entry(a: Entry, b: Entry) -> Entry:
    """The winner of two states of one entry (higher Version, then larger Tombstone)."""
    return b if b.supersedes(a) else a


class Entries:
    """All entries this peer knows, with cached indexes for the query path."""

    def __init__(self) -> None:
        self._by_key: dict[EntryKey, Entry] = {}
        self._names: dict[str, tuple[int, ...]] | None = None
        self._addrs: dict[int, str] | None = None
        self._sorted: list[Entry] | None = None
        self.generation = 0  # bumped on every change; callers may cache against it

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: EntryKey) -> Entry | None:
        return self._by_key.get(key)

    def sorted(self) -> list[Entry]:
        """Every entry, tombstones included, in Go's storage order."""
        if self._sorted is None:
            self._sorted = sorted(self._by_key.values(), key=Entry.store_order)
        return list(self._sorted)

    def add(self, hostname: str, container_id: str, origin: int, addr: int) -> Entry:
        """Insert a live entry, or bring a tombstoned one back at Version+1 (Go add)."""
        key = (container_id, origin, addr, hostname)
        current = self._by_key.get(key)
        if current is None:
            entry = Entry(container_id, origin, addr, hostname)
        elif current.tombstone:
            entry = msgspec.structs.replace(current, version=current.version + 1, tombstone=0)
        else:
            return current
        self._put(entry)
        return entry

    def merge(self, incoming: Iterable[Entry]) -> list[Entry]:
        """Merge entries in; return those that were new or superseded ours."""
        changed: list[Entry] = []
        for entry in incoming:
            current = self._by_key.get(entry.key)
            if current is None or entry.supersedes(current):
                self._put(entry)
                changed.append(entry)
        return changed

    def tombstone(self, origin: int, match: Callable[[Entry], bool], now: float) -> list[Entry]:
        """Tombstone the live entries of ``origin`` that ``match``; return them."""
        done = [
            e.tombstoned(now)
            for e in self._by_key.values()
            if e.origin == origin and e.live and match(e)
        ]
        for entry in done:
            self._put(entry)
        return sorted(done, key=Entry.store_order)

    def remove_origin(self, origin: int) -> int:
        """Forget every entry of a departed peer (Go PeerGone); return how many."""
        return self._remove(lambda e: e.origin == origin)

    def expire_tombstones(self, now: float, timeout: int = TOMBSTONE_TIMEOUT) -> int:
        """Drop tombstones older than ``timeout`` seconds (Go deleteTombstones)."""
        return self._remove(lambda e: e.tombstone != 0 and int(now) - e.tombstone > timeout)

    def oldest_tombstone(self) -> int | None:
        stamps = [e.tombstone for e in self._by_key.values() if e.tombstone]
        return min(stamps) if stamps else None

    def lookup(self, name: str) -> tuple[int, ...]:
        """Distinct live addresses of a name (case-insensitive), in storage order."""
        if self._names is None:
            self._build_indexes()
            assert self._names is not None
        return self._names.get(name.lower(), ())

    def reverse(self, addr: int) -> str | None:
        """Hostname of the first live entry holding ``addr`` (Go ReverseLookup)."""
        if self._addrs is None:
            self._build_indexes()
            assert self._addrs is not None
        return self._addrs.get(addr)

    def _build_indexes(self) -> None:
        names: dict[str, list[int]] = {}
        addrs: dict[int, str] = {}
        for entry in self.sorted():
            if not entry.live:
                continue
            found = names.setdefault(entry.hostname.lower(), [])
            if entry.addr not in found:
                found.append(entry.addr)
            addrs.setdefault(entry.addr, entry.hostname)
        self._names = {name: tuple(found) for name, found in names.items()}
        self._addrs = addrs

    def _put(self, entry: Entry) -> None:
        self._by_key[entry.key] = entry
        self._changed()

    def _remove(self, doomed: Callable[[Entry], bool]) -> int:
        keys = [k for k, e in self._by_key.items() if doomed(e)]
        for key in keys:
            del self._by_key[key]
        if keys:
            self._changed()
        return len(keys)

    def _changed(self) -> None:
        self._names = self._addrs = None
        self._sorted = None
        self.generation += 1
