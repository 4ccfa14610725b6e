"""Acceptance scenarios for IPAM over the simulated network: eight peers agree on a ring,
share space on demand, keep allocating through a partition, converge when healed, survive
restarts from their persisted state, and recover a dead peer's space with rmpeer."""

from __future__ import annotations

import pytest

from tests.sim.ipamnet import IpamNet, check_invariants, check_reload, persisted_ring
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import Consensus

UNIVERSE = CIDR.parse("10.40.0.0/24")


def converged(net: IpamNet) -> bool:
    live = net.live()
    return (
        len({net.ring_entries(i) for i in live}) == 1
        and len({persisted_ring(net, i) for i in live}) == 1
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_eight_peers_partition_heal_restart_rmpeer(seed: int) -> None:
    net = IpamNet(8, seed, init=Consensus(5), universe=UNIVERSE)
    first = [net.allocate(i, f"c{i}") for i in range(8)]
    net.deliver_some(40)  # some messages in random order, then everything
    net.flush()
    assert all(net.replies[r].error is None for r in first)
    assert converged(net)
    check_invariants(net)

    net.partition([0, 0, 0, 0, 1, 1, 1, 1])
    during = [net.allocate(i, f"p{i}-{k}") for k in range(6) for i in range(8)]
    net.flush()
    check_invariants(net)
    for i in net.live():
        check_reload(net, i)

    net.heal()
    net.flush()
    assert converged(net)
    answered = [net.replies[r] for r in during if r in net.replies]
    assert all(r.error is None for r in answered)
    assert len(answered) == len(during)  # enough space for all of them once healed

    net.stop(3)
    net.stop(5)
    net.start(3)  # back from what it persisted
    net.flush()
    assert net.rmpeer(0, 5) > 0  # 5 never comes back
    net.flush()
    assert converged(net)
    check_invariants(net)
    assert all(peer != net.name(5) for _, _, peer, _ in net.ring_entries(0))


def test_exhausted_universe_waits_then_continues_when_an_address_is_freed() -> None:
    net = IpamNet(3, 4, init=Consensus(2), universe=CIDR.parse("10.40.0.0/28"))  # 14 hosts
    reqs = [net.allocate(k % 3, f"c{k}") for k in range(15)]
    net.flush()
    waiting = [r for r in reqs if r not in net.replies]
    assert len(waiting) == 1
    stuck = next(i for i in range(3) if net.alloc(i).status(net.now).pending_allocates)
    assert net.alloc(stuck).status(net.now).status == "waiting for IP(s) to become available"
    assert net.alloc(stuck).status(net.now).awaiting.startswith("space")
    victim = next(i for i in range(3) if i != stuck and net.alloc(i).owned())
    ident, cidrs = sorted(net.alloc(victim).owned().items())[0]
    net.alloc(victim).free(ident, cidrs[0].addr, net.now)
    net.apply(victim)
    net.flush()
    assert net.replies[waiting[0]].error is None
    check_invariants(net)
