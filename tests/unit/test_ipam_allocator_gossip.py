"""Allocators talking: bootstrap, ring requests, space requests, claims across peers,
Go's merge error texts, shutdown heirs, rmpeer, persistence on restart (ported from Go
ipam/allocator_test.go where a case exists there)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.sim.ipamnet import IpamNet, PeerHandle
from weavenet.core.errors import RemoteProtocolError
from weavenet.core.ipam import codec
from weavenet.core.ipam.address import CIDR, format_address, parse_address
from weavenet.core.ipam.allocator import Allocator, Consensus, PersistOwned, PersistRing, Seed
from weavenet.core.peername import format_peer_name

FIXTURES = Path(__file__).parent.parent / "fixtures" / "weave28"
P0, P1, P2 = (0x0A0000000000 + i + 1 for i in range(3))


def owners(net: IpamNet, i: int) -> list[tuple[str, int]]:
    """Peer i's ring as (CIDR text of each range, owner index)."""
    result = []
    for token, size, peer, _ in net.ring_entries(i):
        prefix = 32 - (size.bit_length() - 1)
        result.append((str(CIDR(token, prefix)), net.index_of(peer)))
    return result


def test_bootstrap_two_electors_reach_consensus_and_allocate() -> None:
    """Go TestBootstrap."""
    net = IpamNet(2, 1, init=Consensus(2))
    req = net.allocate(0, "somecontainer")
    assert req not in net.replies
    assert net.alloc(0).status(net.now).status == "awaiting consensus (quorum: 2, known: 1)"
    net.drain()
    assert net.replies[req].error is None
    assert [net.alloc(i).status(net.now).status for i in (0, 1)] == ["ready", "ready"]
    assert owners(net, 0) == owners(net, 1) == [("10.0.0.0/23", 0), ("10.0.2.0/23", 1)]


def test_ring_request_from_observer_starts_consensus_elsewhere() -> None:
    net = IpamNet(2, 1, init=Consensus(1), observers=frozenset({1}))
    req = net.request()
    net.alloc(1).prime(req, net.now)
    net.apply(1)
    assert net.alloc(1).status(net.now).status == "priming"
    net.drain()
    assert net.replies[req].error is None
    assert owners(net, 1) == [("10.0.0.0/22", 0)]  # observers get no share


def test_periodic_gossip_ring_request_does_not_force_consensus() -> None:
    net = IpamNet(2, 1, init=Consensus(1), observers=frozenset({1}))
    request = codec.encode_gossip(codec.IpamGossip(0, {P1: "p1"}, None, None))
    assert net.alloc(0).on_gossip(request, net.now) is None
    assert net.alloc(0).status(net.now).status == "idle"
    net.alloc(0).on_gossip_broadcast(P1, request, net.now)
    assert net.alloc(0).status(net.now).status == "ready"


def test_empty_but_present_paxos_is_not_a_ring_request() -> None:
    net = IpamNet(2, 1, init=Consensus(1))
    empty = codec.encode_gossip(codec.IpamGossip(0, {P1: "p1"}, {}, None))
    net.alloc(0).on_gossip_broadcast(P1, empty, net.now)
    assert net.alloc(0).status(net.now).status == "idle"
    assert not net.queue


def test_broadcast_relays_our_own_state_and_sends_ring_to_those_lacking_it() -> None:
    net = IpamNet(2, 1, init=Consensus(1))
    net.allocate(0, "c")
    net.queue.clear()
    request = codec.encode_gossip(codec.IpamGossip(0, {P1: "p1"}, None, None))
    relay = net.alloc(0).on_gossip_broadcast(P1, request, net.now)
    assert relay is not None
    state = codec.decode_gossip(relay.encode()[0])
    assert state.ring is not None and state.paxos is None and state.nicknames[P0] == "p0"
    (sent,) = net.queue
    assert (sent.kind, sent.dst, sent.payload[0]) == ("unicast", 1, codec.MSG_RING_UPDATE)


def test_space_request_splits_the_universe_in_halves() -> None:
    """Go TestSpaceRequest (GH #2009)."""
    universe = CIDR.parse("10.32.0.0/12")
    net = IpamNet(2, 1, init=Consensus(2), universe=universe, init_of={0: Consensus(1)})
    net.stop(1)
    req = net.allocate(0, "cont-1")
    net.alloc(0).free("cont-1", net.replies[req].cidr.addr, net.now)  # type: ignore[union-attr]
    net.apply(0)
    assert owners(net, 0) == [("10.32.0.0/12", 0)]
    net.start(1)
    req2 = net.allocate(1, "cont-2")
    net.drain()
    assert net.replies[req2].error is None
    assert owners(net, 0) == [("10.32.0.0/13", 0), ("10.40.0.0/13", 1)]


def test_claim_of_another_peers_address_is_granted() -> None:
    net = IpamNet(2, 1, init=Seed((P0, P1)))
    wanted = CIDR.parse("10.0.3.7/22")  # in p1's half
    req = net.claim(0, "c1", wanted)
    assert net.alloc(0).status(net.now).awaiting == "address 10.0.3.7 from 0a:00:00:00:00:02"
    net.drain()
    assert net.replies[req].error is None
    assert ("10.0.3.7/32", 0) in owners(net, 0)
    assert net.alloc(0).owned() == {"c1": [wanted]}


def test_claim_of_an_address_in_use_elsewhere_is_denied() -> None:
    net = IpamNet(2, 1, init=Seed((P0, P1)))
    taken = net.allocate(1, "c1")
    net.drain()
    held = net.replies[taken].cidr
    assert held is not None and str(held) == "10.0.2.0/22"
    req = net.claim(0, "c2", held)
    net.drain()
    assert net.replies[req].error == (
        "Unable to claim: address 10.0.2.0/22 is owned by other peer 0a:00:00:00:00:02 (p1)"
    )


def test_rings_seeded_differently_close_the_connection_with_gos_text() -> None:
    net = IpamNet(2, 1, init_of={0: Seed((P0,)), 1: Seed((P1,))})
    net.allocate(0, "c")
    net.drain()
    assert net.errors == [
        "broadcast p1->p0: IP allocation was seeded by different peers"
        " (received: [0a:00:00:00:00:02(p1)], ours: [0a:00:00:00:00:01(p0)])"
    ]


def test_incompatible_ranges_close_the_connection_with_gos_text() -> None:
    net = IpamNet(2, 1, init=Seed((P0, P1)))
    other = IpamNet(2, 1, init=Seed((P0, P1)), universe=CIDR.parse("10.1.0.0/24"))
    theirs = other.alloc(1).gossip(other.now)
    assert theirs is not None
    with pytest.raises(RemoteProtocolError) as err:
        net.alloc(0).on_gossip(theirs.encode()[0], net.now)
    assert str(err.value) == (
        "Incompatible IP allocation ranges (received: 10.1.0.0/24, ours: 10.0.0.0/22)"
    )


def test_garbage_gossip_is_a_remote_protocol_error() -> None:
    net = IpamNet(1, 1)
    for payload in (b"", b"\x07junk", b"\x00\x01"):
        with pytest.raises(RemoteProtocolError):
            net.alloc(0).on_gossip_unicast(P1, payload, net.now)
    with pytest.raises(RemoteProtocolError):
        net.alloc(0).on_gossip(b"\xff\xff", net.now)


def test_shutdown_hands_our_ranges_to_a_live_peer() -> None:
    net = IpamNet(3, 1, init=Seed((P0, P1, P2)))
    before = {token: version for token, _, peer, version in net.ring_entries(0) if peer == P0}
    net.reset(0)
    net.drain()
    after = net.ring_entries(1)
    assert all(peer != P0 for _, _, peer, _ in after)
    assert {t: v for t, _, _, v in after if t in before} == {t: v + 100 for t, v in before.items()}
    assert net.ring_entries(1) == net.ring_entries(2)


def test_rmpeer_takes_over_a_dead_peers_ranges() -> None:
    """Go TestTransfer."""
    net = IpamNet(3, 1, init=Consensus(2))
    for i, ident in ((1, "foo"), (2, "bar")):
        net.allocate(i, ident)
        net.flush(rounds=1)
    sizes = {i: sum(s for _, s, p, _ in net.ring_entries(0) if p == net.name(i)) for i in (1, 2)}
    net.stop(1)
    net.stop(2)
    assert net.rmpeer(0, 1) == sizes[1]  # by nickname
    assert net.alloc(0).admin_takeover("0a:00:00:00:00:03", net.now) == sizes[2]
    assert net.alloc(0).admin_takeover("p1", net.now) == 0  # nothing left
    assert net.alloc(0).admin_takeover("nobody", net.now) == 0
    assert net.alloc(0).admin_takeover("p0", net.now) == 0  # ourselves
    assert {p for _, _, p, _ in net.ring_entries(0)} == {P0}
    req = net.allocate(0, "foo")
    assert net.replies[req].error is None


def test_peer_gone_forgets_nicknames_of_peers_without_ranges() -> None:
    net = IpamNet(3, 1, init=Seed((P0, P1)))
    net.flush(rounds=1)
    net.alloc(0).peer_gone(P2, net.now)
    net.alloc(0).peer_gone(P1, net.now)
    assert net.alloc(0).admin_takeover("p2", net.now) == 0  # nickname forgotten
    nicknames = {e.peer: e.nickname for e in net.alloc(0).status(net.now).entries}
    assert nicknames[P1] == "p1"  # still owns ranges: kept


def test_restart_restores_ring_and_addresses() -> None:
    net = IpamNet(2, 1, init=Consensus(2))
    req = net.allocate(0, "c1")
    net.drain()
    ring = net.ring_entries(0)
    net.stop(0)
    net.start(0)
    assert net.ring_entries(0) == ring
    assert net.alloc(0).owned() == {"c1": [net.replies[req].cidr]}
    assert net.alloc(0).status(net.now).status == "ready"


@pytest.mark.parametrize("change", ["peer", "universe"])
def test_persisted_data_of_another_peer_or_range_is_deleted(change: str) -> None:
    net = IpamNet(2, 1, init=Consensus(2))
    net.allocate(0, "c1")
    net.drain()
    store = net.stores[0]
    if change == "peer":
        net.stores[1].ring, net.stores[1].owned = store.ring, dict(store.owned)
        target = 1
    else:
        net.universe = CIDR.parse("10.0.0.0/23")
        target = 0
    net.stop(target)
    alloc = Allocator(net.config(target), PeerHandle(net, target), random.Random(0), net.now)
    alloc.restore(store.ring, dict(store.owned), net.now)
    effects = alloc.take_effects()
    assert PersistRing(None) in effects
    assert PersistOwned("c1", False, ()) in effects
    assert alloc.status(net.now).status == "idle"
    assert alloc.owned() == {}


def test_status_reports_unreachable_owners_after_a_partition() -> None:
    net = IpamNet(2, 1, init=Seed((P0, P1)))
    net.partition([0, 1])
    status = net.alloc(0).status(net.now)
    assert status.unreachable_count == 1 and status.unreachable_percentage == 50.0
    assert parse_address("10.0.2.0") in {e.token for e in status.entries if not e.is_known_peer}


def test_two_peers_end_as_go_did_in_the_golden_report() -> None:
    """tests/fixtures/weave28/h1-plain-report.json: two Go peers, one container each."""
    golden = json.loads((FIXTURES / "h1-plain-report.json").read_text())["IPAM"]
    net = IpamNet(
        2,
        1,
        init=Consensus(2),
        universe=CIDR.parse(golden["Range"]),
        base=0xA20000000000,
        nicknames=("anc-h1", "anc-h2"),
    )
    reqs = [net.allocate(i, f"container{i}") for i in (0, 1)]
    net.flush()
    assert all(net.replies[r].error is None for r in reqs)
    status = net.alloc(0).status(net.now)
    entries = [
        {
            "Token": format_address(e.token),
            "Size": e.size,
            "Peer": format_peer_name(e.peer),
            "Nickname": e.nickname,
            "IsKnownPeer": e.is_known_peer,
            "Version": e.version,
        }
        for e in status.entries
    ]
    assert entries == golden["Entries"]
    assert (status.active_ips, status.range_num_ips) == (golden["ActiveIPs"], golden["RangeNumIPs"])
    assert status.paxos is None and status.status == "ready"
