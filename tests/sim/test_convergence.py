"""Acceptance: many router cores in one process converge to one topology and one set of
routes, despite random connection order, message drops, resets and reordering."""

from __future__ import annotations

import random

import pytest

from tests.sim.simnet import SimNet
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


def _chain(n: int) -> SimNet:
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
    net = _chain(4)
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


def test_gossip_unicast_is_relayed_along_the_chain() -> None:
    net = _chain(3)
    received: list[tuple[int, bytes]] = []

    class Recorder:
        def on_gossip_unicast(self, src: int, msg: bytes) -> None:
            received.append((src, msg))

        def on_gossip_broadcast(self, src: int, update: bytes) -> None:
            return None

        def gossip(self) -> None:
            return None

        def on_gossip(self, msg: bytes) -> None:
            return None

    net.routers[2].channels["test"] = Recorder()  # type: ignore[assignment]
    assert net.routers[0].gossip_unicast("test", net.routers[2].name, b"hello")
    net._effects(0)
    assert net.run_until(lambda: bool(received), limit=5)
    assert received == [(net.routers[0].name, b"hello")]


class _Recorder:
    """A channel owner that remembers what reached it."""

    def __init__(self) -> None:
        self.broadcasts: list[tuple[int, bytes]] = []

    def on_gossip_unicast(self, src: int, msg: bytes) -> None:
        return None

    def on_gossip_broadcast(self, src: int, update: bytes) -> None:
        self.broadcasts.append((src, update))
        return None

    def gossip(self) -> None:
        return None

    def on_gossip(self, msg: bytes) -> None:
        return None


def test_unknown_channel_broadcast_is_relayed_by_a_surrogate() -> None:
    from weavenet.core.mesh.gossip import BytesGossipData, SurrogateGossiper

    net = _chain(3)
    recorder = _Recorder()
    net.routers[2].channels["nameserver"] = recorder  # type: ignore[assignment]
    net.routers[0].gossip_broadcast("nameserver", BytesGossipData([b"entry"]))
    net._effects(0)
    assert net.run_until(lambda: bool(recorder.broadcasts), limit=5)
    assert recorder.broadcasts == [(net.routers[0].name, b"entry")]
    # the middle router knows nothing of the channel, yet passed it on
    assert isinstance(net.routers[1].channels["nameserver"], SurrogateGossiper)


def test_peer_gone_hooks_run_when_a_peer_is_garbage_collected() -> None:
    net = _chain(2)
    gone: list[int] = []
    net.routers[0].peer_gone_hooks.append(gone.append)
    conn_id = next(iter(net.routers[0].by_peer.values())).id
    net.routers[0].connection_closed(conn_id, "test", net.now)
    net._close(conn_id)
    net._effects(0)
    assert net.run_until(lambda: bool(gone), limit=10)
    assert gone == [net.routers[1].name]
