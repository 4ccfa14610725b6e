"""A router whose connections are still forming holds its next topology version back
(router.TOPOLOGY_FORMING_HOLD): a chain-started mesh converges as fast, with far fewer
versions of each entry for every router to decode."""

from __future__ import annotations

import pytest

from tests.sim.slow_overlay import run_to_full_view, slow_chain
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
