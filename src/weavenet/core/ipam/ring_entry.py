"""Ring entries and their merge (Go ipam/ring/entry.go and entries.merge), and ring errors.

Entries are mutable, as Go's are: local operations update them in place.  A merge never
touches the entries it reads; it builds its result from copies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.ipam.address import Range, format_address
from weavenet.core.peername import format_peer_name

VERSION_MASK = 0xFFFFFFFF  # entry versions are uint32 in Go

HasAllocations = Callable[[list[Range]], bool]


class RingError(RemoteProtocolError):
    """A received ring is invalid or cannot be merged into ours; str() is Go's text."""


class DifferentSeedsError(RingError):
    """Go's ErrDifferentSeeds: both rings were seeded, by different peer lists."""

    def __init__(self, received: Sequence[int], ours: Sequence[int]) -> None:
        super().__init__("Received ring was seeded differently from ours")
        self.received = tuple(received)
        self.ours = tuple(ours)


class DifferentRangeError(RingError):
    """Go's ErrDifferentRange: the rings cover different universes."""

    def __init__(self, received: Range, ours: Range) -> None:
        super().__init__("Received range differs from ours")
        self.received = received
        self.ours = ours


class Entry(msgspec.Struct):
    """Owner of ``[token, next token)``: peer, version, free addresses (Go's entry)."""

    token: int
    peer: int
    version: int = 0
    free: int = 0

    def copy(self) -> Entry:
        return Entry(self.token, self.peer, self.version, self.free)

    def same_claim(self, other: Entry) -> bool:
        """Go's entry.Equal: token, peer and version (free space is not compared)."""
        return (self.token, self.peer, self.version) == (other.token, other.peer, other.version)

    def update(self, peer: int, free: int) -> None:
        self.peer = peer
        self.version = (self.version + 1) & VERSION_MASK
        self.free = free


class EntryMerge:
    """Go's entries.merge: walk both sorted entry lists, guarding the ranges ``me`` owns.

    ``make_ranges(start, end)`` cuts a stretch of the ring into plain ranges (split at the
    origin) for ``has_allocations``.  :meth:`run` returns the merged entries (copies: ours
    are never modified) and sets :attr:`updated` if anything of theirs was taken.
    """

    def __init__(
        self,
        ours: list[Entry],
        me: int,
        make_ranges: Callable[[int, int], list[Range]],
        has_allocations: HasAllocations,
    ) -> None:
        self.ours = ours
        self.me = me
        self.make_ranges = make_ranges
        self.has_allocations = has_allocations
        self.result: list[Entry] = []
        self.updated = False
        self.previous_owner: int | None = None

    def _mine(self, entry: Entry) -> None:
        self.result.append(entry.copy())
        self.previous_owner = entry.peer

    def _theirs(self, entry: Entry) -> None:
        self.result.append(entry.copy())
        self.updated = True
        self.previous_owner = None

    def _allocated(self, start: int, end: int) -> bool:
        return self.has_allocations(self.make_ranges(start, end))

    def run(self, other: list[Entry]) -> list[Entry]:
        ours = self.ours
        i = j = 0
        while i < len(ours) and j < len(other):
            mine, theirs = ours[i], other[j]
            if mine.token < theirs.token:
                self._mine(mine)
                i += 1
            elif mine.token > theirs.token:
                splits_ours = self.previous_owner == self.me and theirs.peer != self.me
                if splits_ours and self._allocated(theirs.token, mine.token):
                    raise _entry_in_my_range(theirs)
                self._theirs(theirs)
                j += 1
            else:
                self._same_token(mine, theirs, ours[(i + 1) % len(ours)].token)
                i += 1
                j += 1
        for mine in ours[i:]:
            self.result.append(mine.copy())
        for theirs in other[j:]:
            if self.previous_owner == self.me and theirs.peer != self.me:
                raise _entry_in_my_range(theirs)
            self._theirs(theirs)
        return self.result

    def _same_token(self, mine: Entry, theirs: Entry, next_token: int) -> None:
        if mine.version >= theirs.version:
            if mine.version == theirs.version and not mine.same_claim(theirs):
                if mine.peer == self.me and self._allocated(theirs.token, next_token):
                    raise RingError(
                        f"Inconsistent entries for {format_address(mine.token)}: owned by"
                        f" {format_peer_name(mine.peer)} but incoming message says"
                        f" {format_peer_name(theirs.peer)}"
                    )
                # tie-break: the entry with more free space wins
                if mine.free >= theirs.free:
                    self._mine(mine)
                else:
                    self._theirs(theirs)
            else:
                self._mine(mine)
        elif mine.peer != self.me:
            self._theirs(theirs)
        elif theirs.peer != self.me and not self._allocated(mine.token, next_token):
            # repair inconsistent data: nothing allocated in what we give away
            self._theirs(theirs)
        elif theirs.peer == self.me:
            # a newer version of our own entry: impose ours over it (Go leaves updated alone)
            reasserted = mine.copy()
            reasserted.version = (theirs.version + 1) & VERSION_MASK
            self.result.append(reasserted)
        else:
            raise RingError(
                f"Received update for IP range I own at {format_address(mine.token)}"
                f" v{mine.version}: incoming message says owner"
                f" {format_peer_name(theirs.peer)} v{theirs.version}"
            )


def _entry_in_my_range(theirs: Entry) -> RingError:
    return RingError(
        f"Peer {format_peer_name(theirs.peer)} says it owns the IP range from"
        f" {format_address(theirs.token)}, which I think I own"
    )
