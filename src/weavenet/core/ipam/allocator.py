"""TEMPORARY stand-in for contract B (branch h-ipam) so that the IPAM edge imports and
its tests run; replaced wholesale by h-ipam's allocator.py when it is merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from weavenet.core.errors import WeaveError
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.paxos import PaxosInfo

IPAM_CHANNEL = "IPallocation"
TICK_INTERVAL = 5.0  # Go tickInterval: retries of proposals and pending requests
MAX_CLAIM_TRIES = 5  # Go maxTryCount: a claim of another peer's address gives up after this
CANCELLED = "cancelled"  # HTTP body of a cancelled request (Go cancellationErr)


@dataclass(frozen=True)
class Consensus:
    quorum: int  # already resolved by the caller


@dataclass(frozen=True)
class Seed:
    peers: tuple[int, ...]


@dataclass(frozen=True)
class Observer:
    pass


InitMode = Consensus | Seed | Observer


@dataclass(frozen=True)
class AllocatorConfig:
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


@dataclass(frozen=True)
class Reply:
    """Answer to a long-running request; ``error`` is Go's HTTP body text, None on success."""

    req: int
    cidr: CIDR | None
    error: str | None


@dataclass(frozen=True)
class PersistRing:
    data: bytes | None  # gob(*Ring) as Go's "ring" key; None = delete


@dataclass(frozen=True)
class PersistOwned:
    ident: str
    is_container: bool
    cidrs: tuple[CIDR, ...]  # () = delete


IpamEffect = Reply | PersistRing | PersistOwned


@dataclass(frozen=True)
class RingEntryInfo:
    token: int
    size: int
    peer: int
    nickname: str
    is_known_peer: bool
    version: int


@dataclass(frozen=True)
class IpamStatus:
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


class _Placeholder:
    """Placeholder until h-ipam's allocator is merged."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("the IPAM allocator (branch h-ipam) is not merged yet")


Allocator: Any = _Placeholder
