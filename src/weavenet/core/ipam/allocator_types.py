"""The allocator's vocabulary: configuration, effects, status records, pending requests.

Everything here is plain data; the behaviour lives in allocator.py and its parts.
"""

from __future__ import annotations

import enum
from typing import Protocol

import msgspec

from weavenet.core.errors import WeaveError
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.paxos import PaxosInfo

IPAM_CHANNEL = "IPallocation"
TICK_INTERVAL = 5.0  # Go tickInterval: retries of proposals and pending requests
MAX_CLAIM_TRIES = 5  # Go maxTryCount: a claim of another peer's address gives up after this
CANCELLED = "cancelled"  # HTTP body of a cancelled request (Go cancellationErr)


class Consensus(msgspec.Struct, frozen=True):
    quorum: int  # already resolved by the caller


class Seed(msgspec.Struct, frozen=True):
    peers: tuple[int, ...]


class Observer(msgspec.Struct, frozen=True):
    pass


InitMode = Consensus | Seed | Observer


class AllocatorConfig(msgspec.Struct, frozen=True):
    name: int
    uid: int
    nickname: str
    universe: CIDR
    default_subnet: CIDR
    init: InitMode


class PeerView(Protocol):
    """The router's view of the topology (contract A)."""

    def known_peers(self) -> dict[int, str]: ...
    def is_reachable(self, name: int) -> bool: ...


class GossipData(Protocol):
    def encode(self) -> list[bytes]: ...
    def merge(self, other: GossipData) -> GossipData: ...


class Gossip(Protocol):
    """What the router hands a channel's owner for sending (contract A, structurally)."""

    def gossip_unicast(self, dst: int, msg: bytes, now: float) -> bool: ...
    def gossip_broadcast(self, update: GossipData, now: float) -> None: ...
    def gossip_neighbour_subset(self, update: GossipData, now: float) -> None: ...


class IpamError(WeaveError):
    """A request the caller got wrong; str() is Go's error text."""


class Reply(msgspec.Struct, frozen=True):
    """Answer to a long-running request; ``error`` is Go's HTTP body text, None on success."""

    req: int
    cidr: CIDR | None
    error: str | None


class PersistRing(msgspec.Struct, frozen=True):
    data: bytes | None  # gob(*Ring) as Go's "ring" key; None = delete


class PersistOwned(msgspec.Struct, frozen=True):
    ident: str
    is_container: bool
    cidrs: tuple[CIDR, ...]  # () = delete


IpamEffect = Reply | PersistRing | PersistOwned


class RingEntryInfo(msgspec.Struct, frozen=True):
    token: int
    size: int
    peer: int
    nickname: str
    is_known_peer: bool
    version: int


class IpamStatus(msgspec.Struct, frozen=True):
    status: str
    awaiting: str
    ring_ready: bool
    paxos: PaxosInfo | None
    universe: CIDR
    range_num_ips: int
    active_ips: int
    default_subnet: CIDR
    entries: tuple[RingEntryInfo, ...]
    pending_claims: tuple[tuple[str, CIDR], ...]
    pending_allocates: tuple[str, ...]
    unreachable_count: int
    unreachable_percentage: float


class RingState(enum.Enum):
    """Where the allocator is in getting a ring (Go: ring.Empty() and awaitingConsensus)."""

    NO_RING = "no ring"  # nothing asked for one yet
    AWAITING_CONSENSUS = "awaiting consensus"  # proposing (elector) or asking (observer)
    READY = "ready"  # the ring exists; Paxos is over
    SHUT_DOWN = "shut down"  # weave reset: our space went to an heir; requests are refused


# Pending requests (Go's operation implementations); the allocator tries them in order.


class PendingPrime(msgspec.Struct):
    req: int


class PendingAllocate(msgspec.Struct):
    req: int
    ident: str
    subnet: CIDR
    is_container: bool
    asked: tuple[int, ...] = ()  # peers we last asked for space, for status


class PendingClaim(msgspec.Struct):
    req: int | None  # None once answered (noErrorOnUnknown) but still being tried
    ident: str
    cidr: CIDR
    is_container: bool
    no_error_on_unknown: bool
    tries: int = 0
    asked: int | None = None  # owner we asked for the address, for status


PendingOp = PendingPrime | PendingAllocate | PendingClaim
