"""Acceptance (issue 6, item 1): N simulated IPAM peers under random allocate, free, claim,
partition, heal, restart, reset and rmpeer sequences never hand one address to two
containers, only hand out space they own, converge to one ring once healed, and reload
exactly what they persisted."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sim.ipamnet import IpamNet, check_invariants, check_reload, persisted_ring
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import Consensus, Seed

KINDS = (
    "alloc",
    "alloc",
    "alloc",
    "free",
    "claim",
    "deliver",
    "deliver",
    "drop",
    "tick",
    "partition",
    "heal",
    "stop",
    "start",
    "reset",
    "rmpeer",
)
step = st.tuples(st.sampled_from(KINDS), st.integers(0, 7), st.integers(0, 1 << 16))
UNIVERSE = CIDR.parse("10.9.0.0/24")  # small: peers run out of space and ask each other


class Run:
    def __init__(self, net: IpamNet) -> None:
        self.net = net
        self.idents = 0

    def live(self, i: int) -> int | None:
        live = self.net.live()
        return live[i % len(live)] if live else None

    def down(self, i: int) -> int | None:
        down = [
            j for j in range(self.net.n) if self.net.allocs[j] is None and j not in self.net.gone
        ]
        return down[i % len(down)] if down else None

    def ident(self) -> str:
        self.idents += 1
        return f"c{self.idents}"

    def step(self, kind: str, peer: int, k: int) -> None:
        net = self.net
        p = self.live(peer)
        if kind == "alloc" and p is not None:
            net.allocate(p, self.ident())
        elif kind == "free" and p is not None:
            self.free(p, k)
        elif kind == "claim" and p is not None:
            addr = net.universe.addr + 1 + k % (net.universe.size() - 2)
            net.claim(p, self.ident(), CIDR(addr, net.universe.prefix_len))
        elif kind == "deliver":
            net.deliver_some(1 + k % 20)
        elif kind == "drop" and net.queue:
            net.queue.pop(k % len(net.queue))
        elif kind == "tick":
            net.advance(5.0)
        elif kind == "partition":
            net.partition([(k >> j) & 1 for j in range(net.n)])
        elif kind == "heal":
            net.heal()
        elif kind == "stop" and p is not None and len(net.live()) > 1:
            # a peer that took part in Paxos must not come back as another Paxos node
            # before the ring exists (Go's known limitation): stop only peers with a ring
            if net.alloc(p).status(net.now).ring_ready:
                net.stop(p)
        elif kind == "start":
            d = self.down(peer)
            if d is not None:
                net.start(d)
        elif kind == "reset" and p is not None and len(net.live()) > 1:
            net.reset(p)
        elif kind == "rmpeer" and p is not None:
            d = self.down(k)
            if d is not None:
                net.rmpeer(p, d)

    def free(self, p: int, k: int) -> None:
        owned = sorted(self.net.alloc(p).owned().items())
        if not owned:
            return
        ident, cidrs = owned[k % len(owned)]
        if k & 1:
            self.net.alloc(p).delete(ident, self.net.now)
        else:
            self.net.alloc(p).free(ident, cidrs[0].addr, self.net.now)
        self.net.apply(p)


# IPAM_PROP_EXAMPLES=2000 for a long soak; the default keeps `make test-fast` quick
EXAMPLES = int(os.environ.get("IPAM_PROP_EXAMPLES", "150"))


@settings(deadline=None, max_examples=EXAMPLES)
@given(
    n=st.integers(2, 8),
    seeded=st.booleans(),
    observer=st.booleans(),
    seed=st.integers(0, 1000),
    steps=st.lists(step, max_size=60),
)
def test_ipam_peers_stay_consistent_and_converge(
    n: int, seeded: bool, observer: bool, seed: int, steps: list[tuple[str, int, int]]
) -> None:
    names = tuple(0x0A0000000000 + i + 1 for i in range(n))
    observers = frozenset({0}) if observer and not seeded else frozenset()
    electors = n - len(observers)
    init = Seed(names) if seeded else Consensus(electors // 2 + 1)
    net = IpamNet(n, seed, init=init, universe=UNIVERSE, observers=observers)
    run = Run(net)
    for kind, peer, k in steps:
        run.step(kind, peer, k)
        assert not net.errors, net.errors
        check_invariants(net)
        if net.live():
            check_reload(net, net.live()[k % len(net.live())])
    net.heal()
    for i in range(n):
        if net.allocs[i] is None and i not in net.gone:
            net.start(i)
    net.flush()
    assert not net.errors, net.errors
    check_invariants(net)
    live = net.live()
    for i in live:
        check_reload(net, i)
    rings = {persisted_ring(net, i) for i in live if net.alloc(i).status(net.now).ring_ready}
    assert len(rings) <= 1, "rings differ after healing"
    views = {net.ring_entries(i) for i in live}
    assert len(views) == 1, "peers see different rings after healing"
    if not net.gone:  # liveness: with every peer back, only a full universe makes anyone wait
        statuses = [net.alloc(i).status(net.now) for i in live]
        if run.idents:
            assert all(s.ring_ready for s in statuses), [s.status for s in statuses]
        if any(s.pending_allocates for s in statuses):
            in_use = sum(len(h) for a, h in net.holdings().items() if UNIVERSE.range().contains(a))
            assert in_use == UNIVERSE.size() - 2, f"allocations wait with {in_use} in use"
