"""The allocator's state and the plumbing every part of it shares (Go ipam/allocator.go).

``AllocatorCore`` owns the ring, our space, the owned addresses, nicknames, Paxos and the
effects queue; it knows how to persist, how to send, and how the ring comes to life.
The request logic (allocator_requests.py) and the gossip/admin logic (allocator.py) are
the other parts of the same object, as Go spreads one type's methods over files.
"""

from __future__ import annotations

import logging
import random

from weavenet.core.ipam import codec
from weavenet.core.ipam.address import CIDR, Range
from weavenet.core.ipam.allocator_types import (
    TICK_INTERVAL,
    AllocatorConfig,
    Consensus,
    Gossip,
    GossipData,
    IpamEffect,
    Observer,
    PeerView,
    PendingAllocate,
    PendingClaim,
    PendingPrime,
    PersistOwned,
    PersistRing,
    RingState,
    Seed,
)
from weavenet.core.ipam.paxos import Node, Participant
from weavenet.core.ipam.paxos import Observer as PaxosObserver
from weavenet.core.ipam.ring import Ring, normalize_peers
from weavenet.core.ipam.space import Space
from weavenet.core.peername import format_peer_name

log = logging.getLogger("weavenet.ipam")


class IpamGossipData:
    """Our whole state as it was when made. Merging keeps the newer one: unlike Go (which
    encodes at send time) we snapshot, so the later snapshot is the latest state."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def encode(self) -> list[bytes]:
        return [self.payload]

    def merge(self, other: GossipData) -> GossipData:
        return other if isinstance(other, IpamGossipData) else self


class _NoGossip:
    """Until attach_gossip: sends go nowhere (a lone allocator in tests)."""

    def gossip_unicast(self, dst: int, msg: bytes, now: float) -> bool:
        return False

    def gossip_broadcast(self, update: GossipData, now: float) -> None:
        return None

    def gossip_neighbour_subset(self, update: GossipData, now: float) -> None:
        return None


class AllocatorCore:
    def __init__(
        self, config: AllocatorConfig, peers: PeerView, rng: random.Random, now: float
    ) -> None:
        self.config = config
        self._peers = peers
        self._rng = rng
        self._name = config.name
        universe = config.universe.range()
        self._ring = Ring.new(universe.start, universe.end, config.name)
        self._space = Space()
        self._owned: dict[str, tuple[bool, list[CIDR]]] = {}
        self._nicknames: dict[int, str] = {config.name: config.nickname}
        self._paxos: Participant | None = (
            PaxosObserver() if isinstance(config.init, Observer) else Node(config.name, config.uid)
        )
        self._state = RingState.NO_RING
        self._gossip: Gossip = _NoGossip()
        self._effects: list[IpamEffect] = []
        self._pending_primes: list[PendingPrime] = []
        self._pending_claims: list[PendingClaim] = []
        self._pending_allocates: list[PendingAllocate] = []
        self._next_tick = float("inf")
        self._started = False

    # --- logging -------------------------------------------------------------------------

    def _info(self, text: str) -> None:
        log.info("[allocator %s] %s", format_peer_name(self._name), text)

    # --- peers ---------------------------------------------------------------------------

    def _is_known_peer(self, name: int) -> bool:
        """Go isKnownPeer: the peer is in the router's topology."""
        return name in self._peers.known_peers()

    def _describe(self, name: int) -> str:
        nickname = self._nicknames.get(name)
        text = format_peer_name(name)
        return f"{text}({nickname})" if nickname else text

    # --- start-up ------------------------------------------------------------------------

    def _start(self, now: float) -> None:
        """Go Start: once, after restore (or at the first event without one)."""
        if self._started:
            return
        self._started = True
        if self._state is RingState.READY:
            if isinstance(self.config.init, Seed):
                self._info("Found persisted IPAM data, ignoring supplied IPAM seed")
            else:
                self._info("Initialising with persisted data")
        elif isinstance(self.config.init, Seed):
            self._info("Initialising with supplied IPAM seed")
            self._create_ring(list(self.config.init.peers), now)
        elif isinstance(self.config.init, Observer):
            self._info("Initialising as observer - awaiting IPAM data from another peer")
        else:
            self._info("Initialising via deferred consensus")

    def _arm_tick(self, now: float) -> None:
        """Something now waits: retry in TICK_INTERVAL unless a retry is already due."""
        if not now <= self._next_tick < float("inf"):
            self._next_tick = now + TICK_INTERVAL

    def _busy(self) -> bool:
        """Anything the tick would retry."""
        pending = self._pending_primes or self._pending_claims or self._pending_allocates
        return self._state is RingState.AWAITING_CONSENSUS or bool(pending)

    # --- persistence ---------------------------------------------------------------------

    def _persist_ring(self) -> None:
        self._effects.append(PersistRing(codec.encode_ring(self._ring)))

    def _persist_owned(self, ident: str) -> None:
        is_container, cidrs = self._owned.get(ident, (False, []))
        self._effects.append(PersistOwned(ident, is_container, tuple(cidrs)))

    # --- owned addresses -----------------------------------------------------------------

    def _add_owned(self, ident: str, cidr: CIDR, is_container: bool) -> None:
        _, cidrs = self._owned.get(ident, (is_container, []))
        self._owned[ident] = (is_container, [*cidrs, cidr])
        self._persist_owned(ident)

    def _remove_owned(self, ident: str, addr: int) -> bool:
        entry = self._owned.get(ident)
        if entry is None:
            return False
        is_container, cidrs = entry
        kept = [c for c in cidrs if c.addr != addr]
        if len(kept) == len(cidrs):
            return False
        if kept:
            self._owned[ident] = (is_container, kept)
        else:
            del self._owned[ident]
        self._persist_owned(ident)
        return True

    def _remove_all_owned(self, ident: str) -> list[CIDR]:
        entry = self._owned.pop(ident, None)
        if entry is None:
            return []
        self._persist_owned(ident)
        return entry[1]

    def _owned_in_range(self, ident: str, r: Range) -> list[CIDR]:
        entry = self._owned.get(ident)
        return [] if entry is None else [c for c in entry[1] if r.contains(c.addr)]

    def _find_owner(self, addr: int) -> str:
        for ident, (_, cidrs) in self._owned.items():
            if any(c.addr == addr for c in cidrs):
                return ident
        return ""

    # --- sending -------------------------------------------------------------------------

    def _our_state(self, now: float) -> codec.IpamGossip:
        """Our whole state: Paxos only while we have no ring (observers send none)."""
        if self._ring.empty():
            paxos = None if self._paxos is None else self._paxos.gossip_state()
            return codec.IpamGossip(int(now), dict(self._nicknames), paxos, None)
        return codec.IpamGossip(int(now), dict(self._nicknames), None, self._ring)

    def _gossip_data(self, now: float) -> IpamGossipData:
        return IpamGossipData(codec.encode_gossip(self._our_state(now)))

    def _broadcast(self, now: float) -> None:
        self._gossip.gossip_broadcast(self._gossip_data(now), now)

    def _unicast(self, dest: int, msg: codec.IpamUnicast, now: float) -> bool:
        return self._gossip.gossip_unicast(dest, codec.encode_unicast(msg), now)

    def _send_ring_update(self, dest: int, now: float) -> None:
        self._unicast(dest, codec.RingUpdate(self._our_state(now)), now)

    def _send_space_request(self, dest: int, r: Range, now: float) -> bool:
        return self._unicast(dest, codec.SpaceRequest(r), now)

    def _send_space_request_denied(self, dest: int, r: Range, now: float) -> None:
        self._unicast(dest, codec.SpaceRequestDenied(r), now)

    # --- the ring's life cycle -----------------------------------------------------------

    def _establish_ring(self, now: float) -> None:
        """Make progress towards a ring: start proposing (observers: start asking)."""
        if self._state is not RingState.NO_RING or self._paxos is None:
            return
        self._state = RingState.AWAITING_CONSENSUS
        self._arm_tick(now)
        init = self.config.init
        # Go's determineQuorum never gives less than 1; a 0 would make Paxos refuse to propose
        self._paxos.set_quorum(max(1, init.quorum) if isinstance(init, Consensus) else 0)
        self._propose(now)
        agreed = self._paxos.consensus()
        if agreed is not None:  # a quorum of 1 agrees with itself at once
            self._create_ring(list(agreed.value), now)

    def _propose(self, now: float) -> None:
        if self._paxos is not None:
            self._paxos.propose()
        self._broadcast(now)

    def _create_ring(self, peers: list[int], now: float) -> None:
        self._ring.claim_for_peers(normalize_peers(peers))
        self._ring_updated(now)
        self._broadcast(now)

    def _ring_updated(self, now: float) -> None:
        """The ring changed: persist it, follow it with our space, retry what waits."""
        if self._state in (RingState.NO_RING, RingState.AWAITING_CONSENSUS):
            self._state = RingState.READY
            self._paxos = None  # with a ring, Paxos is over
        self._persist_ring()
        self._space.update_ranges(self._ring.owned_ranges())
        self._try_pending_ops(now)

    def _has_allocations(self, ranges: list[Range]) -> bool:
        return self._space.has_allocations(ranges)

    def _report_free_space(self) -> None:
        """Tell the ring how much of our space is free (so others ask the right peer)."""
        ranges = self._ring.owned_ranges()
        if not ranges:
            return
        free = {r.start: self._space.num_free_addresses_in_range(r) for r in ranges}
        if self._ring.report_free(free):
            self._persist_ring()

    def _finish(self) -> None:
        """After every event, as Go's actor loop does after every action."""
        self._report_free_space()

    # --- provided by the request part ----------------------------------------------------

    def _try_pending_ops(self, now: float) -> None:
        raise NotImplementedError
