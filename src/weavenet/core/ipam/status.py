"""The IPAM status as `weave status`, /report and /metrics need it (Go ipam/status.go and
the templates and metrics of prog/weaver/http.go, metrics.go)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from weavenet.core.ipam.address import CIDR, format_address
from weavenet.core.ipam.allocator_types import IpamStatus, RingEntryInfo
from weavenet.core.ipam.paxos import PaxosInfo
from weavenet.core.peername import format_peer_name

ALL_UNREACHABLE = "all IP ranges owned by unreachable peers - use 'rmpeer' if they are dead"
WAITING_FOR_IPS = "waiting for IP(s) to become available"


class StatusFacts(msgspec.Struct, frozen=True):
    """What the allocator knows, gathered for one status."""

    universe: CIDR
    default_subnet: CIDR
    active_ips: int
    entries: tuple[RingEntryInfo, ...]
    paxos: PaxosInfo | None
    pending_claims: tuple[tuple[str, CIDR], ...]
    pending_allocates: tuple[str, ...]
    asked_for_space: tuple[int, ...]  # peers asked for space by pending allocations
    asked_for_claims: tuple[tuple[CIDR, int], ...]  # (address, owner asked) of claims
    unknown_seeds: tuple[int, ...]  # seed peers the router does not know (seed mode)


def status_line(facts: StatusFacts) -> str:
    """Go's `Status:` line of `weave status`."""
    if facts.entries:
        if not any(e.size > 0 and e.is_known_peer for e in facts.entries):
            return ALL_UNREACHABLE
        if facts.pending_allocates:
            return WAITING_FOR_IPS
        return "ready"
    if facts.paxos is not None:
        if facts.paxos.elector:
            quorum, known = facts.paxos.quorum, facts.paxos.known_nodes
            return f"awaiting consensus (quorum: {quorum}, known: {known})"
        return "priming"
    return "idle"


def _names(names: Sequence[int]) -> str:
    return ", ".join(format_peer_name(n) for n in names)


def awaiting(facts: StatusFacts) -> str:
    """A sentence for humans naming what the allocator waits for ("" if nothing)."""
    parts: list[str] = []
    if facts.paxos is not None:
        if facts.paxos.elector:
            parts.append(
                f"consensus: {facts.paxos.known_nodes} of the {facts.paxos.quorum} peers"
                " needed for a quorum are known"
            )
        else:
            parts.append("a ring from an electing peer (this peer is an observer)")
    waiting = bool(facts.pending_allocates or facts.pending_claims or facts.paxos)
    if waiting and facts.unknown_seeds:
        parts.append(f"seed peers not yet known: {_names(facts.unknown_seeds)}")
    if facts.entries and facts.pending_allocates:
        if facts.asked_for_space:
            parts.append(f"space from {_names(facts.asked_for_space)}")
        else:
            parts.append("space: no reachable peer has free addresses in the subnet")
    for cidr, owner in facts.asked_for_claims:
        parts.append(f"address {format_address(cidr.addr)} from {format_peer_name(owner)}")
    return "; ".join(parts)


def build_status(facts: StatusFacts) -> IpamStatus:
    range_num_ips = facts.universe.size()
    owners: dict[int, tuple[bool, int]] = {}
    for e in facts.entries:
        reachable, size = owners.get(e.peer, (e.is_known_peer, 0))
        owners[e.peer] = (reachable, size + e.size)
    unreachable = [size for reachable, size in owners.values() if not reachable]
    return IpamStatus(
        status=status_line(facts),
        awaiting=awaiting(facts),
        ring_ready=bool(facts.entries),
        paxos=facts.paxos,
        universe=facts.universe,
        range_num_ips=range_num_ips,
        active_ips=facts.active_ips,
        default_subnet=facts.default_subnet,
        entries=facts.entries,
        pending_claims=facts.pending_claims,
        pending_allocates=facts.pending_allocates,
        unreachable_count=len(unreachable),
        unreachable_percentage=sum(unreachable) * 100.0 / range_num_ips,
    )
