"""Decisions of the Kubernetes agent, pure: which peers to connect, forget and reclaim, who
holds the reclaim Lease, and how a router initialises IPAM.

Reclaim is a reconciliation: from (the ring's owners and whether the router can reach them,
the peer names of the nodes that exist, the peers already reclaimed) compute what to take
over. Only the holder of the Lease acts, so a range is never handed to two peers; recording
what was reclaimed makes a repeat a no-op.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import msgspec


class NodeView(msgspec.Struct, frozen=True):
    """What the agent needs of one Node object."""

    name: str
    internal_ip: str | None
    peer_name: str | None  # the annotation its agent wrote before launching its router


def peer_addresses(nodes: Iterable[NodeView], me: str) -> set[str]:
    """The addresses this router should connect to: every other node's InternalIP."""
    return {n.internal_ip for n in nodes if n.name != me and n.internal_ip}


class PeerChanges(msgspec.Struct, frozen=True):
    connect: frozenset[str]
    forget: frozenset[str]


def peer_changes(before: set[str], after: set[str]) -> PeerChanges:
    return PeerChanges(frozenset(after - before), frozenset(before - after))


def reclaim_candidates(
    owners: Mapping[str, bool],
    live_peers: Iterable[str],
    reclaimed: Iterable[str],
    me: str,
) -> list[str]:
    """Peers whose ranges should be taken over: they own ranges (`owners`: peer name ->
    reachable from here), no existing node runs them, this router cannot reach them, and they
    were not reclaimed already."""
    skip = {me, *live_peers, *reclaimed}
    return sorted(peer for peer, reachable in owners.items() if peer not in skip and not reachable)


class LeaseAction(enum.Enum):
    CREATE = "create"  # no Lease yet: create it naming us
    RENEW = "renew"  # we hold it
    ACQUIRE = "acquire"  # expired, or held by a node that no longer exists
    WAIT = "wait"  # another live node holds it


class LeaseView(msgspec.Struct, frozen=True):
    holder: str | None
    renewed_at: float | None  # seconds since the epoch
    duration: float


def lease_action(lease: LeaseView | None, me: str, now: float, live_nodes: set[str]) -> LeaseAction:
    """What to do with the reclaim Lease (the API server's optimistic concurrency makes
    CREATE and ACQUIRE succeed for exactly one contender)."""
    if lease is None:
        return LeaseAction.CREATE
    if lease.holder == me:
        return LeaseAction.RENEW
    expired = lease.renewed_at is None or now >= lease.renewed_at + lease.duration
    if not lease.holder or lease.holder not in live_nodes or expired:
        return LeaseAction.ACQUIRE
    return LeaseAction.WAIT


class IpamInit(msgspec.Struct, frozen=True):
    """`--ipalloc-init` for this router: `seed=<first node's peer>` for everyone."""

    seed: str

    def flag(self) -> str:
        return f"seed={self.seed}"


def ipam_init(recorded_seed: str | None, my_peer: str) -> IpamInit:
    """The seed is whatever the first agent recorded (it created the ConfigMap); the very first
    agent records itself. Every router gets the same seed list, so no router can form a ring
    of its own from a partial view of the cluster: one ring, whatever the order of joining."""
    return IpamInit(recorded_seed or my_peer)


def parse_names(text: str | None) -> list[str]:
    """A comma-separated list as stored in the ConfigMap (blank entries dropped)."""
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def join_names(names: Iterable[str]) -> str:
    return ",".join(sorted(set(names)))
