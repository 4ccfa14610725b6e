"""A router whose connections are still forming holds its next topology version back
(router.TOPOLOGY_FORMING_HOLD): a chain-started mesh converges as fast, with far fewer
versions of each entry for every router to decode."""

from __future__ import annotations

import functools
import random

import pytest

from tests.sim.simnet import SimNet
from tests.sim.slow_overlay import SlowOverlay
from weavenet.core.mesh import router as router_module
from weavenet.core.mesh.peers import Peers

N, SPREAD = 30, 10.0


def _full_view(net: SimNet) -> bool:
    """Every router sees every peer with N-1 established connections."""
    for router in net.routers:
        peers = list(router.peers)
        if len(peers) < N:
            return False
        for peer in peers:
            if sum(c.established for c in peer.connections.values()) != N - 1:
                return False
    return True


def _chain_start(seed: int, monkeypatch: pytest.MonkeyPatch) -> tuple[float, float]:
    """(seconds to the full view, to 0.1 s; versions each router published, mean)."""
    net = SimNet(N, seed, max_delay=0.02, overlay=lambda i: SlowOverlay(random.Random(i), 0.3, 1.5))
    for k in range(1, N):
        net.at(SPREAD * k / N, functools.partial(net.connect, k, [k - 1]))
    published = [0]
    publish = Peers.publish

    def counted(peers: Peers) -> None:
        published[0] += 1
        publish(peers)

    with monkeypatch.context() as patch:
        patch.setattr(Peers, "publish", counted)
        while not (net.now > SPREAD and _full_view(net)):
            assert net.now < 60.0, "the chain-started mesh did not converge"
            net.run_for(0.1)
    return net.now, published[0] / N


@pytest.mark.parametrize("seed", [1])
def test_forming_connections_hold_versions_without_slowing_convergence(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    held_time, held_versions = _chain_start(seed, monkeypatch)
    monkeypatch.setattr(router_module, "TOPOLOGY_FORMING_HOLD", 0.0)
    free_time, free_versions = _chain_start(seed, monkeypatch)
    assert held_versions <= 0.7 * free_versions, (held_versions, free_versions)
    assert held_time <= free_time + 1.0, (held_time, free_time)
