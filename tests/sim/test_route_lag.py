"""Routes after changes of our own connections: a connection added or established shows
in the routes within ROUTES_RECALC_DELAY, as news from others does; a connection lost
leaves them at once (no route may lead through it)."""

from __future__ import annotations

from tests.sim.simnet import SimNet
from weavenet.core.mesh.routes import ROUTES_RECALC_DELAY


def _direct(net: SimNet, i: int, j: int) -> bool:
    """Router i routes gossip for router j straight to it."""
    return net.routers[i].routes(net.now).lookup_all(net.routers[j].name) == net.routers[j].name


def test_a_new_connection_shows_in_routes_within_the_recalc_delay() -> None:
    net = SimNet(2, seed=4, discovery=False)
    net.connect(1, [0])
    assert net.run_until(lambda: net.routers[0].by_peer != {}, limit=5)
    router, remote = net.routers[0], net.routers[1].name
    assert router.fresh_routes().lookup_all(remote) == remote
    assert router.routes(net.now + ROUTES_RECALC_DELAY).lookup_all(remote) == remote


def test_a_lost_connection_leaves_routes_at_once() -> None:
    net = SimNet(2, seed=5, discovery=False)
    net.connect(1, [0])
    assert net.run_until(lambda: _direct(net, 0, 1) and _direct(net, 1, 0), limit=5)
    router = net.routers[0]
    router.routes(net.now)  # computed just now: a lazy cache would keep it for the delay
    (conn_id,) = router.by_peer.values()
    router.connection_closed(conn_id.id, "simulated loss", net.now)
    assert router.routes(net.now).lookup_all(net.routers[1].name) is None
