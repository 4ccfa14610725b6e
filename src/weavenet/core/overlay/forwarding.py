"""Frame forwarding, flooding and MAC learning shared by every overlay (weave-wire §7.8;
``weave:router/network_router.go``).

A frame captured on the local bridge goes to the peer that owns its destination MAC, or
is flooded along our broadcast tree when that is unknown. A frame arriving from the
overlay in a record (src, dst) is relayed unchanged when ``dst`` is another peer;
otherwise it is injected into our bridge and, unless its destination MAC is local,
flooded on along ``src``'s broadcast tree. Each flooded copy carries ``dst`` = the
neighbour it is sent to, so every receiver treats it as "for us".

Deviations from Go, all on frames Go mishandles: frames shorter than an Ethernet header
or with a group (multicast) source MAC are dropped (as a Linux bridge does) instead of
teaching the cache a bogus MAC; a group destination MAC is flooded without a cache
lookup; a forwarded record claiming ``src`` = ourself (a loop or forgery) is dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from weavenet.core.mesh.routes import Routes
from weavenet.core.overlay.mac_cache import MacCache

ETH_HEADER_LEN = 14
STP_MAC = bytes.fromhex("0180c2000000")

# (mac, peer it is now at, peer it was at or None): a MAC was discovered or moved.
LearnHook = Callable[[bytes, int, int | None], None]


class Send(msgspec.Struct):  # not frozen: created per frame, and frozen init costs 3x
    """Send the frame to neighbour ``next_hop`` in a frame record (``src``, ``dst``)."""

    next_hop: int
    src: int
    dst: int


class Tally(msgspec.Struct):
    frames: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.frames += 1
        self.bytes += size


class ForwardCounters(msgspec.Struct):
    """Per-frame (not per-copy) counts for metrics."""

    forwarded: Tally = msgspec.field(default_factory=Tally)  # captured, unicast to a known peer
    # captured or received, sent on to >= 1 hop
    flooded: Tally = msgspec.field(default_factory=Tally)
    relayed: Tally = msgspec.field(default_factory=Tally)  # received for another peer, passed on
    injected: Tally = msgspec.field(default_factory=Tally)  # received for us, into the bridge
    dropped: Tally = msgspec.field(default_factory=Tally)


class Forwarder(msgspec.Struct):
    """Forwarding decisions of peer ``ourself``; the caller hands each :class:`Send` to the
    overlay connection to ``next_hop`` (no connection: drop) and injects when told to."""

    ourself: int
    macs: MacCache = msgspec.field(default_factory=MacCache)
    counters: ForwardCounters = msgspec.field(default_factory=ForwardCounters)
    on_learn: LearnHook | None = None
    on_conflict: LearnHook | None = None

    def captured(self, frame: bytes, routes: Routes, now: float) -> list[Send]:
        """``handleCapturedPacket``: a frame our bridge gave us."""
        return self.captured_header(frame[:ETH_HEADER_LEN], len(frame), routes, now)

    def captured_header(self, frame: bytes, size: int, routes: Routes, now: float) -> list[Send]:
        """:meth:`captured` from the frame's Ethernet header and its size (for frames in
        a buffer the caller reuses: the decision needs only the MACs)."""
        if size < ETH_HEADER_LEN or frame[6] & 1:
            return self._drop(size)
        src_mac = frame[6:12]
        new, other = self.macs.claim(src_mac, self.ourself, now)
        if other is not None:
            # The MAC lives at another peer: most likely a frame we injected ourselves.
            if self.on_conflict is not None:
                self.on_conflict(src_mac, self.ourself, other)
            return self._drop(size)
        if new and self.on_learn is not None:
            self.on_learn(src_mac, self.ourself, None)
        dst_mac = frame[0:6]
        if dst_mac == STP_MAC:
            return self._drop(size)
        owner = None if frame[0] & 1 else self.macs.lookup(dst_mac)
        if owner is None:
            sends = self._flood(self.ourself, routes)
            if not sends:
                return self._drop(size)
            self.counters.flooded.add(size)
            return sends
        if owner == self.ourself:
            return self._drop(size)  # for a local MAC: the bridge should not give us these
        hop = routes.lookup(owner)
        if hop is None:
            return self._drop(size)
        self.counters.forwarded.add(size)
        return [Send(hop, self.ourself, owner)]

    def received(
        self, src: int, dst: int, frame: bytes, routes: Routes, now: float
    ) -> tuple[bool, list[Send]]:
        """``handleForwardedPacket``: a frame from the overlay in record (src, dst).

        Returns (inject into our bridge?, copies to send on).
        """
        return self.received_header(src, dst, frame[:ETH_HEADER_LEN], len(frame), routes, now)

    def received_header(
        self, src: int, dst: int, frame: bytes, size: int, routes: Routes, now: float
    ) -> tuple[bool, list[Send]]:
        """:meth:`received` from the frame's Ethernet header and its size."""
        if dst != self.ourself:
            hop = routes.lookup(dst)
            if hop is None:  # the destination vanished while the frame was in flight
                self._drop(size)
                return False, []
            self.counters.relayed.add(size)
            return False, [Send(hop, src, dst)]
        if size < ETH_HEADER_LEN or frame[6] & 1 or src == self.ourself:
            self._drop(size)
            return False, []
        src_mac = frame[6:12]
        moved, previous = self.macs.claim(src_mac, src, now, force=True)
        if moved and self.on_learn is not None:
            self.on_learn(src_mac, src, previous)
        self.counters.injected.add(size)
        if not frame[0] & 1 and self.macs.lookup(frame[0:6]) == self.ourself:
            return True, []
        sends = self._flood(src, routes)
        if sends:
            self.counters.flooded.add(size)
        return True, sends

    @staticmethod
    def _flood(src: int, routes: Routes) -> list[Send]:
        return [Send(hop, src, hop) for hop in routes.broadcast(src)]

    def _drop(self, size: int) -> list[Send]:
        self.counters.dropped.add(size)
        return []
