"""Paxos under random delivery orders and drops: once messages flow, everyone agrees."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.ipam.paxos import AcceptedValue, GossipState, Node

# One chaotic step: (kind, node, message index). kind 0 = deliver, 1 = drop, 2 = propose.
steps = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 7), st.integers(0, 1000)),
    max_size=120,
)


class Net:
    """Broadcasts of whole gossip states, delivered or dropped in any order."""

    def __init__(self, k: int) -> None:
        self.nodes = [Node(0x100 + i, 1000 + i, k // 2 + 1) for i in range(k)]
        self.bag: list[tuple[int, int, GossipState]] = []  # (from, to, snapshot)
        self.agreed: AcceptedValue | None = None

    def broadcast(self, i: int) -> None:
        state = self.nodes[i].gossip_state()
        self.bag.extend((i, j, state) for j in range(len(self.nodes)) if j != i)

    def propose(self, i: int) -> None:
        self.nodes[i].propose()
        self.broadcast(i)
        self.check()

    def deliver(self, index: int) -> None:
        _, dst, state = self.bag.pop(index)
        node = self.nodes[dst]
        if node.update(state):
            node.think()
            self.broadcast(dst)
        self.check()

    def check(self) -> None:
        """Safety: no node ever sees a consensus other than the first one seen anywhere."""
        names = {n.id.name for n in self.nodes}
        for node in self.nodes:
            agreed = node.consensus()
            if agreed is None:
                continue
            assert set(agreed.value) <= names, "value names an unknown node"
            assert len(agreed.value) >= node.quorum
            if self.agreed is None:
                self.agreed = agreed
            assert agreed.origin == self.agreed.origin, "two different consensus values"

    def flow(self) -> None:
        """Messages now flow: deliver everything; while no consensus, one node retries."""
        for attempt in range(len(self.nodes) + 1):
            while self.bag:
                self.deliver(0)
            if all(n.consensus() is not None for n in self.nodes):
                return
            self.propose(attempt % len(self.nodes))
        raise AssertionError("no consensus although every message was delivered")


@settings(deadline=None, max_examples=150)
@given(k=st.integers(1, 7), chaos=steps)
def test_consensus_is_reached_agreed_and_names_known_nodes(
    k: int, chaos: list[tuple[int, int, int]]
) -> None:
    net = Net(k)
    net.propose(0)
    for kind, node, index in chaos:
        if kind == 2:
            net.propose(node % k)
        elif net.bag:
            if kind == 0:
                net.deliver(index % len(net.bag))
            else:
                net.bag.pop(index % len(net.bag))
    net.flow()
    values = {n.consensus() for n in net.nodes}
    assert len(values) == 1
