"""Acceptance: many router cores in one process converge to one topology and one set of
routes, despite random connection order, message drops, resets and reordering."""

from __future__ import annotations

import random

import pytest

from tests.sim.simnet import SimNet
from tests.sim.stallnet import StallNet
from weavenet.core.peername import UNKNOWN_PEER_NAME


def _converged(net: SimNet) -> bool:
    n = net.n
    if any(count != n - 1 for count in net.established_counts()):
        return False
    first = net.topology(0)
    if len(first) != n:
        return False
    return all(net.topology(i) == first for i in range(1, n))


def _start_random_tree(net: SimNet, rng: random.Random) -> None:
    order = list(range(net.n))
    rng.shuffle(order)
    for pos, i in enumerate(order[1:], start=1):
        net.connect(i, [order[rng.randrange(pos)]])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_twenty_routers_converge_despite_drops_and_reordering(seed: int) -> None:
    net = SimNet(20, seed, drop=0.05, reset=0.002, max_delay=0.05)
    _start_random_tree(net, random.Random(seed))
    assert net.run_until(lambda: _converged(net), limit=600), net.established_counts()
    # once quiet (no more drops), every router agrees on routes too: all direct
    net.drop = net.reset = 0.0
    assert net.run_until(lambda: _converged(net), limit=120)
    for i, router in enumerate(net.routers):
        unicast = router.fresh_routes().unicast
        assert unicast[router.name] == UNKNOWN_PEER_NAME
        assert {d: v for d, v in unicast.items() if d != router.name} == {
            p.name: p.name for p in router.peers if p.name != router.name
        }, f"router {i} routes indirectly in a full mesh"


def test_converges_with_password() -> None:
    net = SimNet(8, 7, max_delay=0.02, password=b"s3cret")
    _start_random_tree(net, random.Random(7))
    assert net.run_until(lambda: _converged(net), limit=120)


def chain(n: int) -> SimNet:
    """n routers in a line, without discovery, converged."""
    net = SimNet(n, 11, discovery=False)
    for i in range(1, n):
        net.connect(i, [i - 1])
    assert net.run_until(
        lambda: (
            all(net.topology(i) == net.topology(0) and len(net.topology(i)) == n for i in range(n))
            and net.established_counts() == [1] + [2] * (n - 2) + [1]
        ),
        limit=120,
    ), net.established_counts()
    return net


def test_chain_without_discovery_routes_through_intermediate_peers() -> None:
    net = chain(4)
    names = [r.name for r in net.routers]
    first, last = net.routers[0], net.routers[-1]
    # unicast from one end to the other goes hop by hop
    assert first.fresh_routes().lookup(names[3]) == names[1]
    assert net.routers[1].fresh_routes().lookup(names[3]) == names[2]
    assert last.fresh_routes().lookup(names[0]) == names[2]
    # a broadcast from r0 is passed along the chain, each peer once
    assert first.fresh_routes().broadcast(names[0]) == [names[1]]
    assert net.routers[1].fresh_routes().broadcast(names[0]) == [names[2]]
    assert net.routers[2].fresh_routes().broadcast(names[0]) == [names[3]]
    assert last.fresh_routes().broadcast(names[0]) == []
    # no connection was made beyond the chain
    assert net.established_counts() == [1, 2, 2, 1]


def test_a_wrong_password_says_so_in_the_connection_error() -> None:
    from weavenet.core.mesh.router import Router, RouterConfig

    net = SimNet(2, 3, password=b"right")
    wrong = RouterConfig(name=2, nickname="r1", password=b"wrong")
    net.routers[1] = Router(wrong, random.Random(3), net.now)
    net.connect(0, [1])

    def errors() -> list[str]:
        return [str(row["Info"]) for row in net.routers[0].maker.status(0.0)]

    assert net.run_until(lambda: any("decrypt" in e for e in errors()), limit=30), errors()
    assert any(
        e.startswith("Unable to decrypt TCP msg: check that every peer uses the same --password")
        for e in errors()
    ), errors()
    assert net.established_counts() == [0, 0]


def test_chain_start_converges_soon_after_stalls_and_full_write_buffers() -> None:
    """bench-scale's conditions in the core: a chain start, connections carrying 4 KB/s
    behind 16 KB write buffers (gossip fills them, pausing the senders; asyncio's 64 KB
    fill too rarely since routers publish their entries at a bounded rate), and routers starved
    of CPU for 5-17 s at random. Nothing may stay stale once the stalls are over: the
    delay allowed is well under one periodic gossip interval (30 s)."""
    n, seed = 30, 5
    net = StallNet(n, seed, max_delay=0.05, rate=4_000, write_high=16_384, write_low=4_096)
    rng = random.Random(seed)
    for _ in range(25):
        victim, at, seconds = rng.randrange(n), rng.uniform(0, 40), rng.uniform(5, 17)
        net.at(at, lambda v=victim, s=seconds: net.stall(v, s))
    for i in range(1, n):
        net.connect(i, [i - 1])
    net.run_for(60)  # every stall is over by now
    assert net.pauses > 0, "no write buffer filled: the test would not test pausing"
    assert net.run_until(lambda: _converged(net), limit=15), net.established_counts()
