"""Paxos nodes (port of Go ipam/paxos/paxos_test.go plus the single steps)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import pytest

from weavenet.core.ipam.paxos import (
    NO_PROPOSAL,
    AcceptedValue,
    Node,
    NodeClaims,
    NodeID,
    Observer,
    PaxosInfo,
    ProposalID,
)


def test_proposal_order_is_round_then_name_then_uid() -> None:
    low = ProposalID(1, NodeID(9, 9))
    assert low < ProposalID(2, NodeID(1, 1))
    assert ProposalID(2, NodeID(1, 9)) < ProposalID(2, NodeID(2, 1))
    assert ProposalID(2, NodeID(2, 1)) < ProposalID(2, NodeID(2, 2))
    assert not NO_PROPOSAL.valid() and low.valid()
    assert low > NO_PROPOSAL


def test_single_node_with_quorum_one_agrees_with_itself_at_once() -> None:
    node = Node(5, 50, quorum=1)
    node.propose()
    agreed = node.consensus()
    assert agreed is not None
    assert agreed.value == (5,)
    assert agreed.origin == ProposalID(1, NodeID(5, 50))


def test_propose_without_quorum_is_refused() -> None:
    with pytest.raises(ValueError, match="no quorum"):
        Node(1, 1).propose()


def test_propose_goes_one_round_above_everything_seen() -> None:
    node = Node(1, 1, quorum=2)
    other = NodeID(2, 2)
    seen = ProposalID(7, other)
    node.update({other: NodeClaims(seen, NO_PROPOSAL, AcceptedValue((), NO_PROPOSAL))})
    node.propose()
    assert node.gossip_state()[node.id].promise == ProposalID(8, node.id)


def test_update_reports_only_news() -> None:
    a, b = Node(1, 1, quorum=2), Node(2, 2, quorum=2)
    a.propose()
    assert b.update(a.gossip_state())
    assert not b.update(a.gossip_state())
    assert b.think()  # adopts a's promise
    assert not b.think()


def test_two_nodes_reach_consensus_on_both_names() -> None:
    a, b = Node(1, 1, quorum=2), Node(2, 2, quorum=2)
    a.propose()
    b.update(a.gossip_state())
    b.think()
    assert a.update(b.gossip_state()) and a.think()  # quorum of promises: a accepts
    assert a.consensus() is None  # only one acceptor so far
    b.update(a.gossip_state())
    b.think()
    a.update(b.gossip_state())
    agreed_a, agreed_b = a.consensus(), b.consensus()
    assert agreed_a is not None and agreed_a == agreed_b
    assert agreed_a.value == (1, 2)


def test_higher_promise_keeps_previously_accepted_value() -> None:
    a, b, c = Node(1, 1, 2), Node(2, 2, 2), Node(3, 3, 2)
    a.propose()
    b.update(a.gossip_state())
    b.think()
    a.update(b.gossip_state())
    a.think()  # a accepted (1, 2) under its proposal
    first = a.gossip_state()[a.id].accepted_val
    c.update(a.gossip_state())
    c.propose()  # round 2 by c
    a.update(c.gossip_state())
    a.think()  # a promises c's proposal
    c.update(a.gossip_state())
    c.think()  # quorum (a, c): must re-use a's accepted value
    assert c.gossip_state()[c.id].accepted_val == first


def test_observer_takes_no_part() -> None:
    obs = Observer()
    assert obs.gossip_state() is None
    assert not obs.update(
        {NodeID(1, 1): NodeClaims(NO_PROPOSAL, NO_PROPOSAL, AcceptedValue((), NO_PROPOSAL))}
    )
    obs.propose()
    assert not obs.think()
    assert obs.consensus() is None
    assert not obs.is_elector()
    assert obs.info() == PaxosInfo(elector=False, known_nodes=0, quorum=0)


def test_node_info_counts_known_nodes() -> None:
    a, b = Node(1, 1, 3), Node(2, 2, 3)
    a.propose()
    b.update(a.gossip_state())
    b.think()
    assert b.info() == PaxosInfo(elector=True, known_nodes=2, quorum=3)


# --- the Go model: random topology, gossip along "ready" links, re-proposals, isolation --


@dataclass(eq=False)
class ModelNode:
    node: Node
    links: list[ModelNode] = field(default_factory=list)
    isolated: bool = False
    first: AcceptedValue | None = None


class Model:
    def __init__(self, count: int, connected: float, rng: random.Random) -> None:
        self.rng = rng
        self.quorum = count // 2 + 1
        self.nodes = [
            ModelNode(Node(i // 2 + 1, rng.getrandbits(63), self.quorum)) for i in range(count)
        ]
        self.ready: set[tuple[int, int]] = set()
        for m in self.nodes:
            m.node.propose()
        for i in range(1, count):
            linked = False
            for j in range(i):
                if rng.random() < connected:
                    linked = True
                    self.link(i, j)
            if not linked:
                self.link(i, rng.randrange(i))

    def link(self, i: int, j: int) -> None:
        if i == j:
            return
        self.nodes[i].links.append(self.nodes[j])
        self.nodes[j].links.append(self.nodes[i])
        self.ready |= {(i, j), (j, i)}

    def changed(self, i: int) -> None:
        for other in self.nodes[i].links:
            j = self.nodes.index(other)
            if not other.isolated:
                self.ready.add((i, j))

    def pick(self) -> int:
        while True:
            i = self.rng.randrange(len(self.nodes))
            if not self.nodes[i].isolated:
                return i

    def isolate(self, i: int) -> None:
        self.nodes[i].isolated = True
        self.ready = {(a, b) for a, b in self.ready if i not in (a, b)}
        neighbours = [self.nodes.index(n) for n in self.nodes[i].links if not n.isolated]
        for a, b in itertools.pairwise(neighbours):
            self.link(a, b)

    def simulate(self, repropose: float, isolate: float) -> bool:
        left = len(self.nodes)
        for _ in range(200_000):
            if not self.ready:
                if any(m.node.consensus() is not None for m in self.nodes if not m.isolated):
                    return True
                i = self.pick()
                self.nodes[i].node.propose()
                self.changed(i)
            src, dst = self.rng.choice(sorted(self.ready))
            self.ready.discard((src, dst))
            target = self.nodes[dst]
            if target.node.update(self.nodes[src].node.gossip_state()):
                target.node.think()
                if target.first is None:
                    target.first = target.node.consensus()
                self.changed(dst)
            if self.rng.random() < repropose:
                i = self.pick()
                self.nodes[i].node.propose()
                self.changed(i)
            if left > self.quorum and self.rng.random() < isolate:
                self.isolate(self.pick())
                left -= 1
                i = self.pick()
                self.nodes[i].node.propose()
                self.changed(i)
        return False

    def validate(self) -> None:
        origins = set()
        for m in self.nodes:
            if m.isolated:
                continue
            agreed = m.node.consensus()
            assert agreed is not None, "a node does not know the consensus"
            if m.first is not None:
                assert m.first.origin == agreed.origin, "a node changed its mind"
            origins.add(agreed.origin)
        assert len(origins) == 1, "nodes disagree"


def test_single_node_model_converges() -> None:
    model = Model(1, 0.0, random.Random(1))
    assert model.simulate(0.0, 0.0)
    model.validate()


@pytest.mark.parametrize("seed", range(40))
def test_ten_node_model_converges_and_agrees(seed: int) -> None:
    model = Model(10, 0.5, random.Random(seed))
    assert model.simulate(repropose=0.01, isolate=0.01)
    model.validate()
