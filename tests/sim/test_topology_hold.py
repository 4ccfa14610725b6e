"""A router whose connections are still forming holds its next topology version back
(router.TOPOLOGY_FORMING_HOLD): a chain-started mesh converges as fast, with far fewer
versions of each entry for every router to decode."""

from __future__ import annotations

import pytest

from tests.sim.simnet import SimNet
from tests.sim.slow_overlay import RouteLags, full_view, run_to_full_view, slow_chain
from weavenet.core.mesh import router as router_module
from weavenet.core.mesh.peers import Peers

N, SPREAD = 30, 10.0


def _chain_start(seed: int, monkeypatch: pytest.MonkeyPatch) -> tuple[float, float]:
    """(seconds to the full view, to 0.1 s; versions each router published, mean)."""
    net = slow_chain(N, seed, SPREAD)
    published = [0]
    publish = Peers.publish

    def counted(peers: Peers) -> None:
        published[0] += 1
        publish(peers)

    with monkeypatch.context() as patch:
        patch.setattr(Peers, "publish", counted)
        converged = run_to_full_view(net, N, SPREAD)
    return converged, published[0] / N


@pytest.mark.parametrize("seed", [1])
def test_forming_connections_hold_versions_without_slowing_convergence(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    held_time, held_versions = _chain_start(seed, monkeypatch)
    monkeypatch.setattr(router_module, "TOPOLOGY_FORMING_HOLD", 0.0)
    free_time, free_versions = _chain_start(seed, monkeypatch)
    assert held_versions <= 0.7 * free_versions, (held_versions, free_versions)
    assert held_time <= free_time + 1.0, (held_time, free_time)


def _route_lags(net: SimNet, n: int, spread: float) -> list[float]:
    """For each router: seconds from its first established connection until another
    router sees that in its entry (the first moment anyone has a route to it)."""
    watch = RouteLags()
    while not (net.now > spread and full_view(net, n)):
        assert net.now < 60.0, "the chain-started mesh did not converge"
        net.run_for(0.05)
        watch.observe(net)
    return watch.lags()


@pytest.mark.parametrize("seed", [1, 2])
def test_a_joining_router_is_routable_soon_although_its_versions_are_held(seed: int) -> None:
    """The hold never delays the first version with an established connection: it goes
    out within QUICK + DELAY (2.5 s), plus gossip's latency."""
    lags = _route_lags(slow_chain(N, seed, SPREAD), N, SPREAD)
    assert len(lags) == N
    limit = router_module.TOPOLOGY_UPDATE_QUICK + router_module.TOPOLOGY_UPDATE_DELAY + 0.5
    assert max(lags) <= limit, sorted(lags)[-3:]


def _registered(net: SimNet, i: int, count: int) -> bool:
    return len(net.routers[i].by_peer) == count


def _lists(net: SimNet, viewer: int, owner: int, remote: int) -> bool:
    entry = net.routers[viewer].peers.get(net.routers[owner].name)
    return entry is not None and net.routers[remote].name in entry.connections


def test_a_settled_router_publishes_a_change_at_once_not_after_the_delay() -> None:
    """Connected to every peer it knows, none forming: its new connection goes out QUICK
    after it is made, though its last version went out less than DELAY before (the
    entry a mesh converges on is the last one)."""
    net = SimNet(4, seed=3, discovery=False)
    net.connect(1, [0])
    assert net.run_until(lambda: _lists(net, 1, 0, 1), limit=5)
    net.run_for(3.0)  # quiet
    net.connect(2, [0])
    assert net.run_until(lambda: _lists(net, 1, 0, 2), limit=5)
    net.connect(3, [0])  # within DELAY of router 0's last version
    assert net.run_until(lambda: _registered(net, 0, 3), limit=5)
    made = net.now
    quick = router_module.TOPOLOGY_UPDATE_QUICK
    assert net.run_until(lambda: _lists(net, 1, 0, 3), limit=quick + 0.2)
    assert net.now - made < router_module.TOPOLOGY_UPDATE_DELAY - 0.5
