"""The forwarders of one overlay that have output waiting, sans-IO.

A shell collects what the forwarders want sent (heartbeats, MTU tests) after every mesh
round and every burst of packets. Asking every forwarder made each of those rounds cost
O(peers) even when one peer had something due, and O(peers²) over a mesh's convergence.
Instead a forwarder puts itself on its overlay's :class:`ReadyList` when its queue goes
from empty to non-empty, and the shell drains only the list: an idle peer costs nothing.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class ReadyList(Generic[T]):
    """Items in the order they became ready; each drain hands them over once."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[T] = []

    def add(self, item: T) -> None:
        """``item`` has output waiting (call once per empty -> non-empty change: an item
        added twice is drained twice, which is harmless but wasted)."""
        self._items.append(item)

    def drain(self) -> list[T]:
        out, self._items = self._items, []
        return out

    def __len__(self) -> int:
        return len(self._items)
