"""A sliding replay window (RFC 4303 §3.4.3 style) over per-direction counters, sans-IO.

``top`` is the highest number accepted; a bitmap remembers which of the ``size`` numbers
up to it were seen. A number above ``top`` slides the window; one inside it is fresh if
its bit is clear; one below it is too old. :meth:`fresh` only looks (checked before the
expensive work, on every datagram), :meth:`accept` marks (after authentication), so a
forged packet never moves the window.
"""

from __future__ import annotations


class ReplayWindow:
    __slots__ = ("bits", "size", "top")

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.top = 0  # numbers start at 1
        self.bits = 0  # bit i: top - i was seen

    def fresh(self, number: int) -> bool:
        if number > self.top:
            return True
        age = self.top - number
        return age < self.size and number > 0 and not (self.bits >> age) & 1

    def accept(self, number: int) -> bool:
        """Mark ``number`` seen; False (and no change) if it was not fresh."""
        if not self.fresh(number):
            return False
        if number > self.top:
            shift = number - self.top
            self.bits = ((self.bits << shift) | 1) & ((1 << self.size) - 1)
            self.top = number
        else:
            self.bits |= 1 << (self.top - number)
        return True
