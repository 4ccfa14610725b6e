"""The addresses of the ranges we own: which are allocated, which are free (Go space.go).

Two sets of addresses are each kept, as Go does, as one sorted list of boundaries: even
positions start a run (inclusive), odd positions end it (exclusive); runs never touch or
overlap, so the boundaries are strictly increasing.  Every operation is a binary search
plus one slice assignment, so a /12 with a million addresses costs no more than a /30,
and allocating the lowest free address never scans per address.

``allocated`` is Go's ``ours`` (addresses handed out), ``free`` the rest of what we own.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

from weavenet.core.errors import WeaveError
from weavenet.core.ipam.address import Range, format_address


class SpaceError(WeaveError):
    """An address cannot be claimed or freed; str() is Go's text."""


def _contains(bounds: list[int], addr: int) -> bool:
    return bisect_right(bounds, addr) & 1 == 1


def _add_sub(bounds: list[int], start: int, end: int, sense: int) -> None:
    """Union (sense 0) or difference (sense 1) of ``[start, end)`` with ``bounds``, in place."""
    if start >= end:
        return
    start_pos = bisect_left(bounds, start)
    end_pos = bisect_right(bounds, end, lo=start_pos)
    new = []
    if start_pos & 1 == sense:
        new.append(start)  # start falls outside (add) / inside (subtract) a run
    if end_pos & 1 == sense:
        new.append(end)
    bounds[start_pos:end_pos] = new


def _add(bounds: list[int], start: int, end: int) -> None:
    _add_sub(bounds, start, end, 0)


def _subtract(bounds: list[int], start: int, end: int) -> None:
    _add_sub(bounds, start, end, 1)


def _runs(bounds: list[int]) -> Iterator[tuple[int, int]]:
    it = iter(bounds)
    return zip(it, it, strict=True)


class Space:
    """Free and allocated addresses in the ranges this peer owns."""

    def __init__(self) -> None:
        self._allocated: list[int] = []
        self._free: list[int] = []

    # -- what we own --------------------------------------------------------------------

    def add(self, start: int, size: int) -> None:
        """Add ``[start, start+size)`` as free space."""
        _add(self._free, start, start + size)

    def add_ranges(self, ranges: Iterable[Range]) -> None:
        for r in ranges:
            _add(self._free, r.start, r.end)

    def update_ranges(self, ranges: Iterable[Range]) -> None:
        """``ranges`` is all we should own: anything in them we do not hold yet becomes free."""
        new: list[int] = []
        for r in ranges:
            _add(new, r.start, r.end)
        for start, end in _runs(self._everything()):
            _subtract(new, start, end)
        for start, end in _runs(new):
            _add(self._free, start, end)

    def clear(self) -> None:
        self._allocated.clear()
        self._free.clear()

    def _everything(self) -> list[int]:
        bounds = list(self._allocated)
        for start, end in _runs(self._free):
            _add(bounds, start, end)
        return bounds

    def owned_ranges(self) -> list[Range]:
        """Everything we own, free or not, as maximal runs in address order."""
        return [Range(start, end) for start, end in _runs(self._everything())]

    # -- allocation ---------------------------------------------------------------------

    def _free_runs_in(self, r: Range) -> Iterator[tuple[int, int]]:
        """The free runs clipped to ``r``, in order (Go's walkFree)."""
        free = self._free
        if r.start >= r.end:
            return
        i = (bisect_right(free, r.start) // 2) * 2  # the first run ending after r.start
        while i < len(free) and free[i] < r.end:
            yield max(free[i], r.start), min(free[i + 1], r.end)
            i += 2

    def allocate(self, r: Range) -> int | None:
        """Take the lowest free address in ``r``; None if there is none."""
        for start, _ in self._free_runs_in(r):
            _add(self._allocated, start, start + 1)
            _subtract(self._free, start, start + 1)
            return start
        return None

    def claim(self, addr: int) -> None:
        """Mark a specific free address as allocated."""
        if not _contains(self._free, addr):
            raise SpaceError(f"Address {format_address(addr)} is not free to claim")
        _add(self._allocated, addr, addr + 1)
        _subtract(self._free, addr, addr + 1)

    def free(self, addr: int) -> None:
        """Return an allocated address to the free space."""
        if not _contains(self._allocated, addr):
            raise SpaceError(f"Address {format_address(addr)} is not ours")
        if _contains(self._free, addr):
            raise SpaceError(f"Address {format_address(addr)} is already free")
        _subtract(self._allocated, addr, addr + 1)
        _add(self._free, addr, addr + 1)

    def is_allocated(self, addr: int) -> bool:
        return _contains(self._allocated, addr)

    def is_free(self, addr: int) -> bool:
        return _contains(self._free, addr)

    # -- counting -----------------------------------------------------------------------

    def num_owned_addresses(self) -> int:
        """Addresses allocated (Go's NumOwnedAddresses counts its ``ours`` set)."""
        return sum(end - start for start, end in _runs(self._allocated))

    def num_free_addresses(self) -> int:
        return sum(end - start for start, end in _runs(self._free))

    def num_free_addresses_in_range(self, r: Range) -> int:
        return sum(end - start for start, end in self._free_runs_in(r))

    def has_allocations(self, ranges: Iterable[Range]) -> bool:
        """True unless every address of every range is free here (Go's hasAllocations).

        This is the callback :meth:`Ring.merge` wants: part of a range that we do not
        hold at all counts as "allocated" too, as in Go.
        """
        return any(self.num_free_addresses_in_range(r) != r.size() for r in ranges)

    # -- giving space away --------------------------------------------------------------

    def _biggest_free_range(self, r: Range) -> Range:
        biggest, biggest_size = Range(0, 0), 0
        for start, end in self._free_runs_in(r):
            if end - start >= biggest_size:
                chunk = Range(start, end).biggest_cidr_range()
                if chunk.size() >= biggest_size:
                    biggest, biggest_size = chunk, chunk.size()
        return biggest

    def donate(self, r: Range) -> Range | None:
        """Give away the biggest CIDR-aligned free block in ``r``, no more than half of our
        free space there (the upper half of the block); None if nothing is free."""
        biggest = self._biggest_free_range(r)
        if biggest.size() == 0:
            return None
        if biggest.size() > self.num_free_addresses_in_range(r) // 2:
            # size // 2 rounds down, so what is given rounds up and is never empty
            biggest = Range(biggest.start + biggest.size() // 2, biggest.end)
        _subtract(self._allocated, biggest.start, biggest.end)
        _subtract(self._free, biggest.start, biggest.end)
        return biggest

    # -- text ---------------------------------------------------------------------------

    def __str__(self) -> str:
        parts = []
        if self._allocated:
            runs = "".join(f" {format_address(s)}+{e - s} " for s, e in _runs(self._allocated))
            parts.append("owned:" + runs)
        if self._free:
            parts.append(
                "free:" + "".join(f" {format_address(s)}+{e - s} " for s, e in _runs(self._free))
            )
        return "".join(parts) or "No address ranges owned"

    def free_runs(self) -> list[Range]:
        """The free space as maximal runs (for tests and status)."""
        return [Range(start, end) for start, end in _runs(self._free)]

    def allocated_runs(self) -> list[Range]:
        return [Range(start, end) for start, end in _runs(self._allocated)]
