"""The IPAM ring: a CRDT saying which peer owns which part of the address range (Go ring.go).

The universe ``[start, end)`` is cut at tokens; the entry at a token owns the addresses up
to the next token, the last one wrapping round to the first.  Entries carry a version
(higher wins on merge) and the owner's count of free addresses.  Go does the token
arithmetic in uint32; distances and versions are masked the same way here.

Errors from a received ring are :class:`RingError` (a RemoteProtocolError: close that
connection); a broken precondition of a local call (Go's ``common.Assert``) is a
LocalProtocolError.
"""

from __future__ import annotations

import itertools
import random
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence

import msgspec

from weavenet.core.errors import LocalProtocolError
from weavenet.core.ipam.address import ADDRESS_MASK, Range, format_address
from weavenet.core.ipam.ring_entry import (
    VERSION_MASK,
    DifferentRangeError,
    DifferentSeedsError,
    Entry,
    EntryMerge,
    HasAllocations,
    RingError,
)
from weavenet.core.peername import UNKNOWN_PEER_NAME, format_peer_name

__all__ = [
    "TRANSFER_VERSION_BUMP",
    "VERSION_MASK",
    "DifferentRangeError",
    "DifferentSeedsError",
    "Entry",
    "HasAllocations",
    "RangeInfo",
    "Ring",
    "RingError",
    "normalize_peers",
]

TRANSFER_VERSION_BUMP = 100  # a transfer must win over any concurrent +1 updates

ERR_NOT_SORTED = "Ring not sorted"
ERR_TOKEN_REPEATED = "Token appears twice in ring"
ERR_TOKEN_OUT_OF_RANGE = "Token is out of range"


def _require(condition: bool, what: str) -> None:
    """Go's common.Assert: a broken precondition is our own bug."""
    if not condition:
        raise LocalProtocolError(f"ring: assertion failed: {what}")


class RangeInfo(msgspec.Struct, frozen=True):
    """One range of the ring for status output (Go's RangeInfo)."""

    peer: int
    range: Range
    version: int


def normalize_peers(peers: Iterable[int]) -> list[int]:
    """Sorted and de-duplicated, as Go's normalizeConsensus does before claim_for_peers."""
    return sorted(set(peers))


class Ring(msgspec.Struct):
    """A copy of the ring held by ``peer``; ``entries`` sorted by token.

    The constructor does not validate: a ring decoded from the wire may break every
    invariant, and :meth:`merge` (or :meth:`check_invariants`) reports it.
    """

    start: int
    end: int
    peer: int
    entries: list[Entry] = msgspec.field(default_factory=list)
    seeds: list[int] = msgspec.field(default_factory=list)

    @classmethod
    def new(cls, start: int, end: int, peer: int) -> Ring:
        """An empty ring over ``[start, end)`` (Go's ring.New)."""
        _require(start < end, "start < end")
        return cls(start, end, peer)

    # -- basics -------------------------------------------------------------------------

    def range(self) -> Range:
        return Range(self.start, self.end)

    def empty(self) -> bool:
        return not self.entries

    def contains(self, addr: int) -> bool:
        return self.start <= addr < self.end

    def copy(self) -> Ring:
        entries = [e.copy() for e in self.entries]
        return Ring(self.start, self.end, self.peer, entries, list(self.seeds))

    def restore(self, other: Ring) -> None:
        """Become a copy of ``other`` (Go's Restore, used with the persisted ring)."""
        self.start, self.end, self.peer = other.start, other.end, other.peer
        self.entries = [e.copy() for e in other.entries]
        self.seeds = list(other.seeds)

    def canonical(self) -> tuple[object, ...]:
        """Everything that is gossiped, as a comparable value."""
        entries = tuple((e.token, e.peer, e.version, e.free) for e in self.entries)
        return (self.start, self.end, entries, tuple(self.seeds))

    def distance(self, start: int, end: int) -> int:
        """Addresses from ``start`` to ``end`` going round the ring (uint32 as Go)."""
        if end > start:
            return (end - start) & ADDRESS_MASK
        return ((self.end - start) + (end - self.start)) & ADDRESS_MASK

    def _entry(self, i: int, entries: list[Entry] | None = None) -> Entry:
        es = self.entries if entries is None else entries
        return es[i % len(es)]

    def _insert(self, entry: Entry) -> None:
        i = bisect_left(self.entries, entry.token, key=_token)
        _require(i == len(self.entries) or self.entries[i].token != entry.token, "new token")
        self.entries.insert(i, entry)

    def _get(self, token: int) -> Entry | None:
        i = bisect_left(self.entries, token, key=_token)
        if i < len(self.entries) and self.entries[i].token == token:
            return self.entries[i]
        return None

    # -- invariants ---------------------------------------------------------------------

    def invariant_error(self, entries: list[Entry] | None = None) -> RingError | None:
        """Go's checkEntries: the first broken invariant of ``entries`` (default: ours)."""
        es = self.entries if entries is None else entries
        for prev, cur in itertools.pairwise(es):
            if cur.token < prev.token:
                return RingError(ERR_NOT_SORTED)
        for prev, cur in itertools.pairwise(es):
            if cur.token == prev.token:
                return RingError(ERR_TOKEN_REPEATED)
        if not es:
            return None
        if es[0].token < self.start or es[-1].token >= self.end:
            return RingError(ERR_TOKEN_OUT_OF_RANGE)
        for i, entry in enumerate(es):
            following = es[(i + 1) % len(es)]
            distance = self.distance(entry.token, following.token)
            if entry.free > distance:
                return RingError(
                    f"Entry {format_address(entry.token)}-{format_address(following.token)}"
                    f" reporting too much free space: {entry.free} > {distance}"
                )
        return None

    def check_invariants(self) -> None:
        """Raise RingError if this ring breaks an invariant (for rings received)."""
        error = self.invariant_error()
        if error is not None:
            raise error

    def _assert_invariants(self) -> None:
        error = self.invariant_error()
        if error is not None:
            raise LocalProtocolError(f"ring of {format_peer_name(self.peer)} is broken: {error}")

    # -- ranges -------------------------------------------------------------------------

    def _split_ranges_over_zero(self, ranges: list[Range]) -> list[Range]:
        """All ranges are in order except perhaps the last, which may wrap: fix that up."""
        if not ranges:
            return ranges
        last = ranges[-1]
        if last.end == self.start:
            ranges[-1] = Range(last.start, self.end)
        elif last.end <= last.start:
            ranges[-1] = Range(last.start, self.end)
            ranges.insert(0, Range(self.start, last.end))
        return ranges

    def make_ranges(self, start: int, end: int) -> list[Range]:
        """``[start, end)`` going round the ring, split at the origin if it wraps."""
        return self._split_ranges_over_zero([Range(start, end)])

    def owned_ranges(self) -> list[Range]:
        return self.owned_ranges_of_peer(self.peer)

    def owned_ranges_of_peer(self, peer: int) -> list[Range]:
        """Ranges owned by ``peer`` in address order, split at the origin."""
        self._assert_invariants()
        result = [
            Range(e.token, self._entry(i + 1).token)
            for i, e in enumerate(self.entries)
            if e.peer == peer
        ]
        return self._split_ranges_over_zero(result)

    def all_range_info(self) -> list[RangeInfo]:
        result = []
        for i, e in enumerate(self.entries):
            for r in self.make_ranges(e.token, self._entry(i + 1).token):
                result.append(RangeInfo(e.peer, r, e.version))
        return result

    def owner(self, addr: int) -> int:
        """The peer owning ``addr`` (UNKNOWN_PEER_NAME on an empty ring)."""
        _require(self.start <= addr < self.end, "address inside the ring")
        self._assert_invariants()
        if not self.entries:
            return UNKNOWN_PEER_NAME
        i = bisect_right(self.entries, addr, key=_token) - 1
        return self._entry(i).peer

    def peer_names(self) -> set[int]:
        return {e.peer for e in self.entries}

    # -- local changes ------------------------------------------------------------------

    def claim_for_peers(self, peers: Sequence[int]) -> None:
        """Divide an empty ring among ``peers`` in CIDR-aligned blocks (callers normalise)."""
        _require(self.empty(), "claim_for_peers on an empty ring")
        _require(len(peers) > 0, "at least one peer")
        self._subdivide(self.start, self.end, list(peers))
        self.seeds = list(peers)
        last = self.entries[-1]
        _require((last.token + last.free) & ADDRESS_MASK == self.end & ADDRESS_MASK, "full ring")
        self._assert_invariants()

    def _subdivide(self, start: int, end: int, peers: list[int]) -> None:
        share = end - start
        if share == 0:
            return
        if share == 1 or len(peers) == 1:
            self._insert(Entry(start, peers[0], 0, share))
            return
        mid = start + share // 2
        half = len(peers) // 2
        self._subdivide(start, mid, peers[:half])
        self._subdivide(mid + share % 2, end, peers[half:])

    def grant_range_to_host(self, start: int, end: int, peer: int) -> None:
        """Give ``[start, end)``, which we own, to ``peer`` (inserts up to two tokens)."""
        self._assert_invariants()
        _require(start < end, "start < end")
        _require(self.start <= start < self.end, "start inside the ring")
        _require(self.start < end <= self.end, "end inside the ring")
        _require(bool(self.entries), "ring not empty")
        pos = bisect_right(self.entries, start, key=_token) - 1
        p = pos
        while p < len(self.entries) and self._entry(p).token < end:
            _require(self._entry(p).peer == self.peer, "granted range is ours")
            p += 1
        following = self._entry(pos + 1).token
        start_free = min(self.distance(start, following), self.distance(start, end))
        previous = self._entry(pos)
        if previous.token == start:
            previous.update(peer, start_free)
        else:
            self._insert(Entry(start, peer, 0, start_free))
            pos += 1
            previous.update(self.peer, self.distance(previous.token, start))
        p = pos + 1
        while p < len(self.entries) and self._entry(p).token < end:
            e = self._entry(p)
            e.update(peer, min(e.free, self.distance(e.token, end)))
            p += 1
        if end == self.end:
            end = self.start  # the end of the ring is exclusive: no token there
        if self._get(end) is None:
            self._insert(Entry(end, self.peer, 0, self.distance(end, self._entry(p).token)))
        self._assert_invariants()

    def report_free(self, freespace: Mapping[int, int]) -> bool:
        """Record our free counts, keyed by owned-range start; True if anything changed."""
        self._assert_invariants()
        _require(not self.empty(), "ring not empty")
        free_at = dict(freespace)
        es = self.entries
        if self.start in free_at and es[0].token != self.start:
            # owned_ranges split the wrapping range at the origin: add the halves up again
            last = es[-1].token
            _require(last in free_at, "both halves of the wrapping range reported")
            free_at[last] += free_at.pop(self.start)
        updated = False
        for start, free in free_at.items():
            i = bisect_left(es, start, key=_token)
            _require(i < len(es) and es[i].token == start, "free reported at a token")
            _require(es[i].peer == self.peer, "free reported for our own range")
            _require(free <= self.distance(start, self._entry(i + 1).token), "free fits")
            if es[i].free != free:
                es[i].free = free
                es[i].version = (es[i].version + 1) & VERSION_MASK
                updated = True
        self._assert_invariants()
        return updated

    def transfer(self, from_peer: int, to_peer: int) -> list[Range]:
        """Give every entry of ``from_peer`` to ``to_peer`` (version + 100); the ranges moved."""
        self._assert_invariants()
        moved = []
        for i, e in enumerate(self.entries):
            if e.peer == from_peer:
                e.peer = to_peer
                e.version = (e.version + TRANSFER_VERSION_BUMP) & VERSION_MASK
                moved.append(Range(e.token, self._entry(i + 1).token))
        self._assert_invariants()
        return self._split_ranges_over_zero(moved)

    # -- choosing peers -----------------------------------------------------------------

    def choose_peers_to_ask_for_space(self, start: int, end: int, rng: random.Random) -> list[int]:
        """Other peers with free space in ``[start, end)``, in weighted-random order."""
        space: dict[int, int] = {}
        es = self.entries
        for i, e in enumerate(es):
            if i + 1 < len(es) and (es[i + 1].token - 1) & ADDRESS_MASK < start:
                continue  # this entry's range ends before the wanted range
            if e.token >= end:
                break
            if e.free == 0 or e.peer == self.peer:
                continue
            space[e.peer] = space.get(e.peer, 0) + e.free
        weighted = [(free * rng.random(), peer) for peer, free in space.items()]
        weighted.sort(key=lambda w: w[0], reverse=True)
        return [peer for _, peer in weighted]

    def pick_peer_for_transfer(self, is_valid: Callable[[int], bool]) -> int:
        """The first other owner for which ``is_valid`` holds, else UNKNOWN_PEER_NAME."""
        for e in self.entries:
            if e.peer != self.peer and is_valid(e.peer):
                return e.peer
        return UNKNOWN_PEER_NAME

    # -- merge --------------------------------------------------------------------------

    def merge(self, gossip: Ring, has_allocations: HasAllocations) -> bool:
        """Merge a received ring into ours; True if ours changed (Go's Ring.Merge).

        Raises RingError (ours unchanged) if the received ring is invalid or conflicts
        with ranges we hold allocations in.
        """
        self._assert_invariants()
        gossip.check_invariants()
        if gossip.seeds and self.seeds and list(gossip.seeds) != list(self.seeds):
            raise DifferentSeedsError(gossip.seeds, self.seeds)
        if self.start != gossip.start or self.end != gossip.end:
            raise DifferentRangeError(gossip.range(), self.range())
        merger = EntryMerge(self.entries, self.peer, self.make_ranges, has_allocations)
        result = merger.run(gossip.entries)
        for i, e in enumerate(result):
            distance = self.distance(e.token, result[(i + 1) % len(result)].token)
            if e.peer == self.peer and e.free > distance:
                e.free = distance  # one of our ranges got split while it had no allocations
        error = self.invariant_error(result)
        if error is not None:
            raise RingError(f"Merge of incoming data causes: {error}")
        if not self.seeds:
            self.seeds = list(gossip.seeds)
        self.entries = result
        return merger.updated

    # -- text ---------------------------------------------------------------------------

    def describe(self, nicknames: Mapping[int, str]) -> str:
        """Go's FprintWithNicknames: one ``\\n  token -> peer (nick) (vN)`` line per entry."""
        lines = []
        for e in self.entries:
            nick = f" ({nicknames[e.peer]})" if e.peer in nicknames else ""
            peer = format_peer_name(e.peer)
            lines.append(f"\n  {format_address(e.token)} -> {peer}{nick} (v{e.version})")
        return "".join(lines)

    def __str__(self) -> str:
        head = f"Ring [{format_address(self.start)}, {format_address(self.end)})"
        return head + self.describe({})


def _token(entry: Entry) -> int:
    return entry.token
