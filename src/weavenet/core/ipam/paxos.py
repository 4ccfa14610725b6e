"""Paxos over gossip for agreeing on the peers that seed the IPAM ring (Go ipam/paxos).

Every message is a broadcast of the sender's whole ``GossipState``: what it knows of each
node's promise and accepted proposal. A ``Node`` (elector) merges what it hears (``update``),
then ``think``s: adopt the highest promise seen; if our own proposal is that promise and a
quorum holds it, accept it (with the best value accepted before, else the names we know);
accept whatever was accepted under the promise we hold. ``consensus`` is a quorum of nodes
having accepted values of one origin. An ``Observer`` never takes part: its empty (``None``)
state is a "ring request" to the peers that do.

Retries (a new ``propose`` every 5 s while no consensus) are the allocator's business.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class NodeID(msgspec.Struct, frozen=True, order=True):
    """A node is a peer name plus its UID: a restarted peer has lost its promises, so it
    must not pass for the node that made them."""

    name: int
    uid: int


class ProposalID(msgspec.Struct, frozen=True, order=True):
    """Ordered by round, then proposer name, then proposer UID (Go ``precedes``); round 0 is
    the uninitialised proposal that precedes all others."""

    round: int
    proposer: NodeID

    def valid(self) -> bool:
        return self.round > 0


NO_PROPOSAL = ProposalID(0, NodeID(0, 0))


class AcceptedValue(msgspec.Struct, frozen=True):
    """A value (peer names) plus the proposal that first chose it: comparing origins is
    enough to compare values."""

    value: tuple[int, ...]
    origin: ProposalID


NO_VALUE = AcceptedValue((), NO_PROPOSAL)


class NodeClaims(msgspec.Struct, frozen=True):
    promise: ProposalID
    accepted: ProposalID
    accepted_val: AcceptedValue


NO_CLAIMS = NodeClaims(NO_PROPOSAL, NO_PROPOSAL, NO_VALUE)

GossipState = dict[NodeID, NodeClaims]


class PaxosInfo(msgspec.Struct, frozen=True):
    """What status reports show while consensus is awaited (Go paxos.Status)."""

    elector: bool
    known_nodes: int
    quorum: int


def _same_claims(a: NodeClaims, b: NodeClaims) -> bool:
    """Go ``NodeClaims.equals``: values are compared by origin only."""
    return (
        a.promise == b.promise
        and a.accepted == b.accepted
        and a.accepted_val.origin == b.accepted_val.origin
    )


class Participant(Protocol):
    """What the allocator drives: a ``Node`` or an ``Observer``."""

    def gossip_state(self) -> GossipState | None: ...
    def update(self, received: GossipState) -> bool: ...
    def set_quorum(self, quorum: int) -> None: ...
    def propose(self) -> None: ...
    def think(self) -> bool: ...
    def consensus(self) -> AcceptedValue | None: ...
    def is_elector(self) -> bool: ...
    def info(self) -> PaxosInfo: ...


class Node:
    """An elector: proposes, promises, accepts."""

    def __init__(self, name: int, uid: int, quorum: int = 0) -> None:
        self.id = NodeID(name, uid)
        self.quorum = quorum
        self._knows: GossipState = {}

    def set_quorum(self, quorum: int) -> None:
        self.quorum = quorum

    def gossip_state(self) -> GossipState:
        """A snapshot: messages carry the state at the time they were made."""
        return dict(self._knows)

    def known_nodes(self) -> int:
        return len(self._knows)

    def update(self, received: GossipState) -> bool:
        """Merge what another node knows; True if we learnt something new."""
        changed = False
        for node_id, theirs in received.items():
            ours = self._knows.get(node_id)
            if ours is None:
                self._knows[node_id] = theirs
                changed = True
                continue
            merged = ours
            if merged.promise < theirs.promise:
                merged = NodeClaims(theirs.promise, merged.accepted, merged.accepted_val)
            if merged.accepted < theirs.accepted:
                merged = NodeClaims(merged.promise, theirs.accepted, theirs.accepted_val)
            if merged is not ours:
                self._knows[node_id] = merged
                changed = True
        return changed

    def propose(self) -> None:
        """The Prepare step: promise a proposal above every round seen."""
        if self.quorum == 0:
            raise ValueError("Paxos propose() called with no quorum set")
        highest = 0
        for claims in self._knows.values():
            highest = max(highest, claims.promise.round, claims.accepted.round)
        ours = self._knows.get(self.id, NO_CLAIMS)
        promise = ProposalID(highest + 1, self.id)
        self._knows[self.id] = NodeClaims(promise, ours.accepted, ours.accepted_val)
        if self.quorum == 1:  # we alone are a quorum: accept at once
            self.think()

    def think(self) -> bool:
        """One round of promise/accept reasoning; True if our claims changed."""
        before = self._knows.get(self.id, NO_CLAIMS)
        promise = max((c.promise for c in self._knows.values()), default=NO_PROPOSAL)
        ours = NodeClaims(promise, before.accepted, before.accepted_val)
        # Our proposal is only in the running while it is also our promise: anyone who
        # heard of a higher promise would not accept it anyway.
        if promise.proposer == self.id:
            ours = self._accept_if_promised(ours)
        for claims in self._knows.values():
            if claims.accepted == ours.promise:
                ours = NodeClaims(ours.promise, claims.accepted, claims.accepted_val)
                break
        if _same_claims(ours, before):
            return False
        self._knows[self.id] = ours
        return True

    def _accept_if_promised(self, ours: NodeClaims) -> NodeClaims:
        """The Accept Request step: with a quorum of promises, accept our own proposal with
        the best value accepted before, else a fresh value."""
        count = 0
        best = NO_PROPOSAL
        best_val = NO_VALUE
        for claims in self._knows.values():
            if claims.promise == ours.promise:
                count += 1
                if best < claims.accepted:
                    best, best_val = claims.accepted, claims.accepted_val
        if count < self.quorum:
            return ours
        if not best.valid():
            best_val = AcceptedValue(self._pick_value(), ours.promise)
        return NodeClaims(ours.promise, ours.promise, best_val)

    def _pick_value(self) -> tuple[int, ...]:
        """The names of the nodes we know: at least a quorum, enough to seed the ring."""
        return tuple(sorted({node_id.name for node_id in self._knows}))

    def consensus(self) -> AcceptedValue | None:
        """The agreed value once a quorum accepted values of one origin, else None."""
        if self.quorum == 0:
            return None
        counts: dict[ProposalID, int] = {}
        for claims in self._knows.values():
            if claims.accepted.valid():
                origin = claims.accepted_val.origin
                counts[origin] = counts.get(origin, 0) + 1
                if counts[origin] >= self.quorum:
                    return claims.accepted_val
        return None

    def is_elector(self) -> bool:
        return True

    def info(self) -> PaxosInfo:
        return PaxosInfo(elector=True, known_nodes=len(self._knows), quorum=self.quorum)


class Observer:
    """Never votes; its absent state asks electors for a ring."""

    def gossip_state(self) -> GossipState | None:
        return None

    def update(self, received: GossipState) -> bool:
        return False

    def set_quorum(self, quorum: int) -> None:
        return None

    def propose(self) -> None:
        return None

    def think(self) -> bool:
        return False

    def consensus(self) -> AcceptedValue | None:
        return None

    def is_elector(self) -> bool:
        return False

    def info(self) -> PaxosInfo:
        return PaxosInfo(elector=False, known_nodes=0, quorum=0)
