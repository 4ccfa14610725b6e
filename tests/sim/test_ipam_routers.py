"""IPAM over real router cores: allocators registered with Router.new_gossip reach
consensus, hand out distinct addresses and agree on one ring, in a full mesh and in a
chain where space requests and ring updates are relayed by intermediate routers."""

from __future__ import annotations

import itertools
import random

from tests.sim.simnet import SimNet
from tests.sim.test_convergence import chain
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import (
    IPAM_CHANNEL,
    Allocator,
    AllocatorConfig,
    Consensus,
    Reply,
)

UNIVERSE = CIDR.parse("10.32.0.0/12")


class Peer:
    """One router's allocator and the replies it has given."""

    def __init__(self, net: SimNet, index: int, quorum: int) -> None:
        router = net.routers[index]
        config = AllocatorConfig(
            name=router.config.name,
            uid=router.uid,
            nickname=router.config.nickname,
            universe=UNIVERSE,
            default_subnet=UNIVERSE,
            init=Consensus(quorum),
        )
        self.net, self.index = net, index
        self.allocator = Allocator(config, router, random.Random(index), net.now)
        self.allocator.attach_gossip(router.new_gossip(IPAM_CHANNEL, self.allocator))
        router.on_peer_gone(self.allocator.peer_gone)
        net.tickers.append((index, self))
        self.replies: dict[int, Reply] = {}

    def tick(self, now: float) -> None:
        self.allocator.tick(now)
        self.collect()

    def next_wakeup(self) -> float:
        return self.allocator.next_wakeup()

    def collect(self) -> None:
        for effect in self.allocator.take_effects():
            if isinstance(effect, Reply):
                self.replies[effect.req] = effect

    def allocate(self, req: int, ident: str, subnet: CIDR = UNIVERSE) -> None:
        self.allocator.allocate(req, ident, subnet, self.net.now)
        self.collect()
        self.net.flush(self.index)


def _answered(peers: list[Peer], wanted: int) -> bool:
    for peer in peers:
        peer.collect()
    return sum(len(p.replies) for p in peers) == wanted


def _allocate_everywhere(net: SimNet, peers: list[Peer], per_peer: int) -> list[CIDR]:
    reqs = itertools.count(1)
    for peer in peers:
        for k in range(per_peer):
            peer.allocate(next(reqs), f"c{peer.index}-{k}")
    wanted = per_peer * len(peers)
    assert net.run_until(lambda: _answered(peers, wanted), limit=120), [
        (p.index, p.allocator.status(net.now).status) for p in peers
    ]
    replies = [r for p in peers for r in p.replies.values()]
    assert all(r.error is None and r.cidr is not None for r in replies), replies
    return [r.cidr for r in replies if r.cidr is not None]


def _rings(net: SimNet, peers: list[Peer]) -> list[tuple[tuple[int, int, int], ...]]:
    return [
        tuple((e.token, e.size, e.peer) for e in p.allocator.status(net.now).entries) for p in peers
    ]


def _converged(net: SimNet, peers: list[Peer]) -> bool:
    rings = _rings(net, peers)
    return bool(rings[0]) and all(r == rings[0] for r in rings)


def test_full_mesh_reaches_consensus_and_hands_out_distinct_addresses() -> None:
    net = SimNet(5, 3)
    for i in range(1, 5):
        net.connect(i, [0])
    assert net.run_until(lambda: net.established_counts() == [4] * 5, limit=120)
    peers = [Peer(net, i, quorum=3) for i in range(5)]
    cidrs = _allocate_everywhere(net, peers, per_peer=10)
    assert len({c.addr for c in cidrs}) == 50
    assert all(UNIVERSE.range().contains(c.addr) for c in cidrs)
    assert net.run_until(lambda: _converged(net, peers), limit=120), _rings(net, peers)
    owners = {peer for _, _, peer in _rings(net, peers)[0]}
    assert owners == {r.config.name for r in net.routers}


def test_chain_relays_ipam_gossip_through_intermediate_routers() -> None:
    net = chain(4)
    peers = [Peer(net, i, quorum=3) for i in range(4)]
    cidrs = _allocate_everywhere(net, peers, per_peer=5)
    assert len({c.addr for c in cidrs}) == 20
    assert net.run_until(lambda: _converged(net, peers), limit=120), _rings(net, peers)
    # a subnet only the far end owns: the near end must ask it for space across two hops
    ring = _rings(net, peers)[0]
    far = net.routers[3].config.name
    token, _, _ = next(e for e in ring if e[2] == far)
    subnet = CIDR(token, 24)
    peers[0].allocate(1000, "far-space", subnet)
    assert net.run_until(lambda: _answered(peers, 21), limit=120)
    reply = peers[0].replies[1000]
    assert reply.error is None and reply.cidr is not None
    assert subnet.range().contains(reply.cidr.addr)
