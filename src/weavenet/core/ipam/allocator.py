"""The sans-IO IPAM allocator (Go ipam/allocator.go): a ring of address ranges agreed by
gossip, our own space within it, and the requests that use it.

Fed requests, gossip and ticks, each with ``now``; it answers with effects
(``take_effects``): persistence first, then the replies that depend on it. It sends
through the ``Gossip`` handle of the "IPallocation" channel and implements that channel's
``Gossiper``. The parts: allocator_types (data), allocator_core (state and plumbing),
allocator_requests (allocate/claim/prime/free/...), status (what reports show); this file
adds gossip, leaving and takeover, persistence on start-up, timers and status.

Deviations from Go: gossip data is a snapshot of our state when made (merging keeps the
newer); an unknown unicast kind is a protocol error (Go would hang); there is no Docker
"container died" tracking here (the edge calls ``delete``).
"""

from __future__ import annotations

import contextlib

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.ipam import codec
from weavenet.core.ipam.address import CIDR, Range
from weavenet.core.ipam.allocator_requests import AllocatorRequests
from weavenet.core.ipam.allocator_types import (
    IPAM_CHANNEL,
    TICK_INTERVAL,
    AllocatorConfig,
    Consensus,
    Gossip,
    GossipData,
    InitMode,
    IpamEffect,
    IpamError,
    IpamStatus,
    Observer,
    PeerView,
    PersistOwned,
    PersistRing,
    Reply,
    RingEntryInfo,
    RingState,
    Seed,
)
from weavenet.core.ipam.paxos import GossipState, PaxosInfo
from weavenet.core.ipam.ring import DifferentRangeError, DifferentSeedsError, Ring
from weavenet.core.ipam.space import SpaceError
from weavenet.core.ipam.status import StatusFacts, build_status
from weavenet.core.peername import UNKNOWN_PEER_NAME, format_peer_name, parse_peer_name

__all__ = [
    "IPAM_CHANNEL",
    "Allocator",
    "AllocatorConfig",
    "Consensus",
    "Gossip",
    "InitMode",
    "IpamEffect",
    "IpamError",
    "IpamStatus",
    "Observer",
    "PaxosInfo",
    "PeerView",
    "PersistOwned",
    "PersistRing",
    "Reply",
    "RingEntryInfo",
    "Seed",
]


class Allocator(AllocatorRequests):
    """Contract B; also the Gossiper of IPAM_CHANNEL (contract A)."""

    def attach_gossip(self, gossip: Gossip) -> None:
        self._gossip = gossip

    def take_effects(self) -> list[IpamEffect]:
        """Everything to do since the last call: persistence first (in the order it
        happened), then replies, so no reply goes out before what it depends on is stored."""
        effects, self._effects = self._effects, []
        persist = [e for e in effects if not isinstance(e, Reply)]
        return persist + [e for e in effects if isinstance(e, Reply)]

    # --- persisted state -----------------------------------------------------------------

    def restore(
        self, ring: bytes | None, owned: dict[str, tuple[bool, list[CIDR]]], now: float
    ) -> None:
        """Start from the persisted ring and owned addresses if they are ours (Go
        loadPersistedData); else log why and delete them."""
        persisted = self._decode_persisted(ring)
        problem = self._persisted_problem(persisted)
        if persisted is None or problem:
            self._info(problem or "No valid persisted data")
            self._effects.append(PersistRing(None))
            self._effects.extend(PersistOwned(ident, False, ()) for ident in owned)
        else:
            self._ring.restore(persisted)
            self._space.update_ranges(self._ring.owned_ranges())
            self._owned = {ident: (is_c, list(cidrs)) for ident, (is_c, cidrs) in owned.items()}
            for _, cidrs in self._owned.values():
                for cidr in cidrs:
                    self._claim_restored(cidr.addr)
            self._state = RingState.READY
            self._paxos = None
        self._start(now)
        self._finish()

    def _claim_restored(self, addr: int) -> None:
        with contextlib.suppress(SpaceError):  # outside our space: just kept, as Go
            self._space.claim(addr)

    def _decode_persisted(self, data: bytes | None) -> Ring | None:
        if data is None:
            return None
        try:
            ring = codec.decode_ring(data)
        except RemoteProtocolError as err:
            self._info(f"Persisted ring unreadable ({err})")
            return None
        return None if ring.empty() else ring

    def _persisted_problem(self, ring: Ring | None) -> str:
        if ring is None:
            return ""
        if ring.peer != self._name:
            return f"Deleting persisted data for peername {format_peer_name(ring.peer)}"
        universe = self.config.universe
        if ring.range() != universe.range():
            return f"Deleting persisted data for IPAM range {ring.range()}; our range is {universe}"
        return ""

    # --- gossip (Gossiper) ---------------------------------------------------------------

    def gossip(self, now: float) -> GossipData | None:
        self._start(now)
        return self._gossip_data(now)

    def on_gossip(self, msg: bytes, now: float) -> GossipData | None:
        """Periodic gossip: merged, never relayed (Go)."""
        self._start(now)
        self._update(UNKNOWN_PEER_NAME, msg, now)
        self._finish()
        return None

    def on_gossip_broadcast(self, src: int, update: bytes, now: float) -> GossipData | None:
        """Relay our own full state, not the bytes received (Go)."""
        self._start(now)
        self._update(src, update, now)
        self._finish()
        return self._gossip_data(now)

    def on_gossip_unicast(self, src: int, msg: bytes, now: float) -> None:
        self._start(now)
        message = codec.decode_unicast(msg)
        if isinstance(message, codec.SpaceRequest):
            if not self._ring.empty():  # no ring yet: they will ask again
                self._donate_space(message.range, src, now)
        elif isinstance(message, codec.SpaceRequestDenied):
            self._space_request_denied(src, message.range)
        else:
            self._merge_state(src, message.state, now)
        self._finish()

    def _update(self, sender: int, msg: bytes, now: float) -> None:
        self._merge_state(sender, codec.decode_gossip(msg), now)

    def _merge_state(self, sender: int, data: codec.IpamGossip, now: float) -> None:
        """Go Allocator.update: nicknames, then ring, ring request or Paxos."""
        self._nicknames.update(data.nicknames)
        if data.ring is not None:
            self._merge_ring(data.ring, now)
        elif not self._ring.empty():
            if sender != UNKNOWN_PEER_NAME:  # they lack the ring we have
                self._send_ring_update(sender, now)
        elif data.paxos is not None:
            self._paxos_update(data.paxos, now)
        elif self._paxos is not None and self._paxos.is_elector() and sender != UNKNOWN_PEER_NAME:
            self._establish_ring(now)  # a ring request from a non-elector

    def _merge_ring(self, received: Ring, now: float) -> None:
        try:
            updated = self._ring.merge(received, self._has_allocations)
        except DifferentSeedsError as err:
            raise RemoteProtocolError(
                "IP allocation was seeded by different peers (received: "
                f"{self._annotate(err.received)}, ours: {self._annotate(err.ours)})"
            ) from err
        except DifferentRangeError as err:
            raise RemoteProtocolError(
                "Incompatible IP allocation ranges (received: "
                f"{err.received.as_cidr_string()}, ours: {err.ours.as_cidr_string()})"
            ) from err
        if updated:
            self._prune_nicknames()
            self._ring_updated(now)

    def _paxos_update(self, received: GossipState, now: float) -> None:
        if self._paxos is None or not self._paxos.update(received):
            return
        if self._paxos.think():
            self._broadcast(now)
        agreed = self._paxos.consensus()
        if agreed is not None:
            self._create_ring(list(agreed.value), now)

    def _annotate(self, names: tuple[int, ...]) -> str:
        """Go annotatePeernames printed with %v: ``[aa:..:01(nick) aa:..:02]``."""
        return "[" + " ".join(self._describe(n) for n in names) + "]"

    def _prune_nicknames(self) -> None:
        """Keep nicknames of ring peers and of peers the router knows."""
        ring_peers = self._ring.peer_names()
        known = self._peers.known_peers()
        for name in list(self._nicknames):
            if name not in ring_peers and name not in known:
                del self._nicknames[name]

    def _donate_space(self, wanted: Range, to: int, now: float) -> None:
        """Give the asker part of our free space in ``wanted``; always send our ring back."""
        chunk = self._space.donate(wanted)
        if chunk is None:
            self._send_space_request_denied(to, wanted, now)
        else:
            self._ring.grant_range_to_host(chunk.start, chunk.end, to)
            self._persist_ring()
            self._broadcast(now)
        self._send_ring_update(to, now)

    # --- leaving and taking over ---------------------------------------------------------

    def shutdown(self, now: float) -> None:
        """weave reset: refuse further requests and hand all our ranges to an heir."""
        self._start(now)
        self._state = RingState.SHUT_DOWN
        self._cancel_all()
        heir = self._pick_heir()
        self._ring.transfer(self._name, heir)
        self._space.clear()
        if heir != UNKNOWN_PEER_NAME:
            self._persist_ring()
            self._broadcast(now)

    def _pick_heir(self) -> int:
        """Live ring peers, then live IPAM peers, then gone ring peers, then anyone."""
        for heir in (
            self._ring.pick_peer_for_transfer(self._is_known_peer),
            self._pick_from_nicknames(known_only=True),
            self._ring.pick_peer_for_transfer(lambda _: True),
            self._pick_from_nicknames(known_only=False),
        ):
            if heir != UNKNOWN_PEER_NAME:
                return heir
        return UNKNOWN_PEER_NAME

    def _pick_from_nicknames(self, known_only: bool) -> int:
        for name in sorted(self._nicknames):
            if name != self._name and (not known_only or self._is_known_peer(name)):
                return name
        return UNKNOWN_PEER_NAME

    def admin_takeover(self, peer: str, now: float) -> int:
        """weave rmpeer: take over the ranges of ``peer`` (name or nickname); #IPs gained."""
        self._start(now)
        name = self._lookup_peer(peer)
        if name is None:
            self._info(f"attempt to take over range from unknown peer '{peer}'")
            return 0
        if name == self._name:
            self._info("attempt to take over range from ourself")
            return 0
        if not self._ring.transfer(name, self._name):
            return 0
        before = self._space.num_free_addresses()
        self._ring_updated(now)
        after = self._space.num_free_addresses()
        self._broadcast(now)
        self._finish()
        return after - before

    def _lookup_peer(self, text: str) -> int | None:
        for name, nickname in self._nicknames.items():
            if nickname == text:
                return name
        try:
            return parse_peer_name(text)
        except ValueError:
            return None

    def peer_gone(self, name: int, now: float) -> None:
        """The router forgot a peer: forget its nickname unless it still owns ranges."""
        if name not in self._ring.peer_names():
            self._nicknames.pop(name, None)

    # --- timers --------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Retry what waits, in case messages were lost (every TICK_INTERVAL)."""
        self._start(now)
        if now < self._next_tick:
            return
        if self._state is RingState.AWAITING_CONSENSUS:
            self._propose(now)
        elif self._have_pending_ops():
            if self._ring.empty():
                self._establish_ring(now)
            else:
                self._try_pending_ops(now)
        self._next_tick = now + TICK_INTERVAL if self._busy() else float("inf")
        self._finish()

    def next_wakeup(self) -> float:
        return self._next_tick if self._busy() else float("inf")

    # --- status --------------------------------------------------------------------------

    def status(self, now: float) -> IpamStatus:
        return build_status(self._status_facts())

    def _status_facts(self) -> StatusFacts:
        known = self._peers.known_peers()
        entries = tuple(
            RingEntryInfo(
                token=info.range.start,
                size=info.range.size(),
                peer=info.peer,
                nickname=self._nicknames.get(info.peer, ""),
                is_known_peer=info.peer in known,
                version=info.version,
            )
            for info in self._ring.all_range_info()
        )
        awaiting = self._state is RingState.AWAITING_CONSENSUS and self._paxos is not None
        seeds = self.config.init.peers if isinstance(self.config.init, Seed) else ()
        return StatusFacts(
            universe=self.config.universe,
            default_subnet=self.config.default_subnet,
            active_ips=self._space.num_owned_addresses(),
            entries=entries,
            paxos=self._paxos.info() if awaiting and self._paxos is not None else None,
            pending_claims=tuple((op.ident, op.cidr) for op in self._pending_claims),
            pending_allocates=tuple(f"{op.ident} {op.subnet}" for op in self._pending_allocates),
            asked_for_space=tuple(sorted({p for op in self._pending_allocates for p in op.asked})),
            asked_for_claims=tuple(
                (op.cidr, op.asked) for op in self._pending_claims if op.asked is not None
            ),
            unknown_seeds=tuple(s for s in seeds if s not in known),
        )
