"""Routes after changes of our own connections: a connection established shows in the
routes within ROUTES_RECALC_DELAY, as news from others does; a connection added or lost
changes them at once (a new neighbour must get what gossip relays from then on; no route
may lead through a lost one)."""

from __future__ import annotations

import random

from tests.sim.simnet import SimNet
from tests.sim.slow_overlay import SlowOverlay
from weavenet.core.mesh.routes import ROUTES_RECALC_DELAY


def _direct(net: SimNet, i: int, j: int) -> bool:
    """Router i routes gossip for router j straight to it."""
    return net.routers[i].routes(net.now).lookup_all(net.routers[j].name) == net.routers[j].name


def test_a_new_connection_is_routed_at_once_and_established_within_the_delay() -> None:
    net = SimNet(2, seed=4, discovery=False)
    net.connect(1, [0])
    assert net.run_until(lambda: net.routers[0].by_peer != {}, limit=5)
    router, remote = net.routers[0], net.routers[1].name
    assert router.routes(net.now).lookup_all(remote) == remote  # gossip: at once
    # established at both ends (the data plane's routes need both entries to say so)
    assert net.run_until(lambda: router.fresh_routes().lookup(remote) == remote, limit=5)
    assert router.routes(net.now + ROUTES_RECALC_DELAY).lookup(remote) == remote


def test_a_lost_connection_leaves_routes_at_once() -> None:
    net = SimNet(2, seed=5, discovery=False)
    net.connect(1, [0])
    assert net.run_until(lambda: _direct(net, 0, 1) and _direct(net, 1, 0), limit=5)
    router = net.routers[0]
    router.routes(net.now)  # computed just now: a lazy cache would keep it for the delay
    (conn_id,) = router.by_peer.values()
    router.connection_closed(conn_id.id, "simulated loss", net.now)
    assert router.routes(net.now).lookup_all(net.routers[1].name) is None


def test_a_new_neighbour_gets_the_news_relayed_at_once() -> None:
    """A chain 0 - 1 - 2 (no discovery) whose overlays take a moment to establish: router
    2 connects to 1 around when 1 gets 0's entry with their connection established, and 1
    must relay that to 2, its new neighbour (else 2 has no route to 0 until the periodic
    round, 30 s on); tried at many offsets, as the relay's timing is what matters."""
    for step in range(40):
        net = SimNet(3, seed=step, discovery=False, overlay=_slow)
        net.connect(1, [0])
        net.run_for(0.3 + step * 0.01)
        net.connect(2, [1])
        assert net.run_until(lambda net=net: _routed(net, 2, 0), limit=5), (step, net.topology(2))


def _routed(net: SimNet, i: int, j: int) -> bool:
    return net.routers[i].fresh_routes().lookup(net.routers[j].name) is not None


def _slow(i: int) -> SlowOverlay:
    return SlowOverlay(random.Random(i), 0.4, 0.4)
