"""The periodic topology round (gossip_routing._periodic_topology): each router sends its
own entry to every connection and, to random neighbours, only the entries they may not
have from their owners. In a quiet full mesh a round then brings each router one entry
from each neighbour, its own, instead of mesh's whole table from 2·log2 N of them; and it
still repairs what a router missed, first-hand or not."""

from __future__ import annotations

from collections import Counter

from tests.sim.simnet import SimNet
from tests.sim.test_topology_to_all import _record, _same_view
from weavenet.core.mesh.gossip import GOSSIP_INTERVAL


def _full_mesh(n: int, seed: int) -> SimNet:
    net = SimNet(n, seed, discovery=False)
    for i in range(1, n):
        net.connect(i, list(range(i)))
    assert net.run_until(lambda: _same_view(net, range(n)), limit=60)
    assert net.run_until(lambda: net.now > GOSSIP_INTERVAL + 1, limit=GOSSIP_INTERVAL + 2)
    return net


def test_a_quiet_full_mesh_round_brings_each_router_its_neighbours_own_entries() -> None:
    n = 9
    net = _full_mesh(n, 4)
    seen: list[Counter[tuple[int, int]]] = [Counter() for _ in range(n)]
    for i, router in enumerate(net.routers):
        _record(router.peers, seen[i])
    net.run_for(GOSSIP_INTERVAL)  # every router's timer fires once in the window
    names = [router.name for router in net.routers]
    for i in range(n):
        entries = Counter(name for name, _ in seen[i].elements())
        assert entries == Counter(name for name in names if name != names[i]), (i, entries)


def _forget_latest(net: SimNet, viewer: int, owner: int) -> None:
    """``viewer`` holds an older version of ``owner``'s entry, as if the latest was lost."""
    entry = net.routers[viewer].peers.get(net.routers[owner].name)
    assert entry is not None
    entry.version -= 1
    entry.connections = {}


def test_a_router_that_missed_a_neighbours_entry_has_it_after_one_round() -> None:
    net = _full_mesh(6, 5)
    _forget_latest(net, viewer=4, owner=2)
    assert not _same_view(net, range(6))
    assert net.run_until(lambda: _same_view(net, range(6)), limit=GOSSIP_INTERVAL + 1)


def test_a_router_that_missed_a_distant_entry_has_it_after_one_round() -> None:
    """A line: router 3 hears router 0 only through others' rounds."""
    net = SimNet(4, 6, discovery=False)
    for i in range(1, 4):
        net.connect(i, [i - 1])
    assert net.run_until(
        lambda: _same_view(net, range(4)) and net.established_counts() == [1, 2, 2, 1],
        limit=60,
    )
    _forget_latest(net, viewer=3, owner=0)
    assert net.run_until(lambda: _same_view(net, range(4)), limit=GOSSIP_INTERVAL + 1)
