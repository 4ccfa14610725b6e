"""Our routers send each version of their own entry to every connection, and say so in
the handshake (``TopologyToAll``); whoever gets it from them passes it on only to peers
not in that entry's connection list. In a full mesh a router then hears each version of
a peer's entry once, from the peer, instead of from ~2·log2 N neighbours, and every
router still ends with the same topology."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from tests.sim.simnet import SimNet
from weavenet.core.mesh.gossip import GOSSIP_INTERVAL
from weavenet.core.mesh.peers import Peers
from weavenet.core.mesh.topology_codec import decode_update


def _record(peers: Peers, seen: Counter[tuple[int, int]]) -> None:
    """Count every (peer name, version) that reaches ``peers``, then apply it as usual."""
    apply: Callable[[bytes], tuple[set[int], set[int]]] = peers.apply_update

    def counted(data: bytes) -> tuple[set[int], set[int]]:
        decoded, _ = decode_update(data)
        seen.update((entry.name, entry.version) for entry in decoded)
        return apply(data)

    peers.apply_update = counted  # type: ignore[method-assign]


def _same_view(net: SimNet, routers: range) -> bool:
    first = net.topology(routers[0])
    return len(first) == len(routers) and all(net.topology(i) == first for i in routers)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_full_mesh_hears_a_new_version_once_from_its_owner(seed: int) -> None:
    n = 9  # routers 0-7 a full mesh, then 8 joins through router 0 alone
    net = SimNet(n, seed, discovery=False)
    for i in range(1, n - 1):
        net.connect(i, list(range(i)))
    assert net.run_until(lambda: _same_view(net, range(n - 1)), limit=60)
    # just past the first periodic round of full state (at 30 s; the next at 60 s), whose
    # copies would be counted too
    net.run_until(lambda: net.now > GOSSIP_INTERVAL + 0.5, limit=GOSSIP_INTERVAL + 1)
    before = net.routers[0].peers.ourself.version
    seen: list[Counter[tuple[int, int]]] = [Counter() for _ in range(n)]
    for i, router in enumerate(net.routers):
        _record(router.peers, seen[i])

    net.connect(n - 1, [0])
    assert net.run_until(lambda: _same_view(net, range(n)), limit=20)

    name = net.routers[0].name
    final = net.routers[0].peers.ourself.version
    assert final > before  # router 0 announced its connection to router 8
    for i in range(1, n - 1):  # each version of router 0 came once: from router 0
        copies = {v: seen[i][(name, v)] for v in range(before + 1, final + 1)}
        assert copies[final] == 1 and max(copies.values()) == 1, (i, copies)


def test_peers_not_connected_to_the_owner_still_get_its_news() -> None:
    """A line: nobody but a router's two neighbours has its entry first-hand."""
    net = SimNet(6, 3, discovery=False)
    for i in range(1, 6):
        net.connect(i, [i - 1])
    assert net.run_until(
        lambda: _same_view(net, range(6)) and net.established_counts() == [1, 2, 2, 2, 2, 1],
        limit=60,
    )
