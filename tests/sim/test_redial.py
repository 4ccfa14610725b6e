"""A peer that restarted is redialled (the CI symptom: tests/docker/test_proxy_docker.py
::test_proxy_containers_survive_restarts, where h2 never dialled h1 again).

Replayed on simulated time with the exact sequence of that run: r1 was given r0's address
(a direct target, as `weave launch <h1>`); r0 dies abruptly; r1's immediate redial is
refused, or connects to the dying listener and is reset during the handshake; r1
garbage-collects r0; time passes. As mesh's connection_maker.go: a direct target is
retried with backoff for as long as it stays direct; a target only discovered through
gossip is retried until its peer is gone, then forgotten."""

from __future__ import annotations

import itertools

import pytest

from tests.sim.simnet import SimNet
from weavenet.core.mesh.connection_maker import INITIAL_INTERVAL, NEVER
from weavenet.core.mesh.router import GC_GRACE

DOWN_FOR = 30.0  # r0 stays down this long: several retries at the growing backoff
MAX_LAG = 0.1  # the simulated network's dial and reset delays, with room to spare


def connected(net: SimNet, i: int, j: int) -> bool:
    conn = net.routers[i].by_peer.get(net.routers[j].name)
    return conn is not None and conn.established


def redials(net: SimNet, i: int, j: int, since: float) -> list[float]:
    address = net.address(j)
    return [when for when, who, addr in net.dials if who == i and addr == address and when > since]


def established_pair(seed: int, lived: float) -> SimNet:
    net = SimNet(2, seed)
    net.connect(1, [0])
    assert net.run_until(lambda: connected(net, 1, 0) and connected(net, 0, 1), 30)
    net.run_for(lived)
    return net


@pytest.mark.parametrize("how", ["refused", "reset in handshake"])
@pytest.mark.parametrize("lived", [5.0, 90.0])  # under and over the backoff reset (60 s)
@pytest.mark.parametrize("seed", range(4))
def test_a_direct_peer_is_redialled_with_backoff_after_it_was_garbage_collected(
    how: str, lived: float, seed: int
) -> None:
    net = established_pair(seed, lived)
    (net.unreachable if how == "refused" else net.dying).add(0)
    killed = net.now
    net.restart(0, seed + 100)
    r1, gone = net.routers[1], net.routers[0].name
    collected = GC_GRACE + 5  # held unreachable GC_GRACE first
    assert net.run_until(lambda: gone not in r1.known_peers(), collected), "r0 never collected"
    # the retry after the failed redial is due, and the router's next wake-up covers it
    due = r1.maker.next_wakeup()
    assert due != NEVER and r1.next_wakeup() <= due
    net.run_for(killed + DOWN_FOR - net.now)
    attempts = [killed, *redials(net, 1, 0, killed)]
    assert len(attempts) >= 5, f"r1 stopped redialling r0: attempts at {attempts}"
    # each wait is drawn from [i/2, 3i/2) with i growing x1.5 from INITIAL_INTERVAL (after
    # a connection that lived past RESET_AFTER the first attempt is at once, and uses one)
    interval = INITIAL_INTERVAL
    for before, after in itertools.pairwise(attempts):
        assert after - before <= 1.5 * interval + MAX_LAG, attempts
        interval *= 1.5
    net.unreachable.discard(0)
    net.dying.discard(0)
    assert net.run_until(lambda: connected(net, 1, 0) and connected(net, 0, 1), 1.5 * interval)


def test_a_discovered_target_is_forgotten_with_its_peer_and_a_direct_one_kept() -> None:
    net = SimNet(3, seed=7)
    net.connect(1, [0])
    net.connect(2, [0])  # r1 and r2 learn of each other through r0's gossip
    assert net.run_until(lambda: connected(net, 1, 2) and connected(net, 2, 1), 60)
    net.unreachable.add(2)
    killed = net.now
    net.restart(2, 99)
    gone = net.routers[2].name
    assert net.run_until(
        lambda: all(gone not in net.routers[i].known_peers() for i in (0, 1)), GC_GRACE + 10
    )
    collected = net.now
    net.run_for(60)
    # the address r1 only discovered is not dialled once its peer is gone (a dial planned
    # just before the collection may still be on its way)
    assert not redials(net, 1, 2, collected + MAX_LAG), net.dials
    assert net.address(2) not in net.routers[1].maker.targets
    # r0 never had r2 as a target of its own (r2 dialled it): nothing to redial either
    assert not redials(net, 0, 2, killed)
    # the direct target (r0 for r1) is still there, connected
    assert connected(net, 1, 0)
