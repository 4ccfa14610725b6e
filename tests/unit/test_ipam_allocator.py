"""One allocator on its own: requests, Go's error texts, effect ordering, timers, status
(ported from Go ipam/allocator_test.go where a case exists there)."""

from __future__ import annotations

import random

import pytest

from weavenet.core.ipam import codec
from weavenet.core.ipam.address import CIDR, parse_address
from weavenet.core.ipam.allocator import (
    Allocator,
    AllocatorConfig,
    Consensus,
    IpamError,
    Observer,
    PersistOwned,
    PersistRing,
    Reply,
    Seed,
)
from weavenet.core.ipam.codec import decode_ring

NAME = 0x010000010000
OTHER = 0x020000020000
NOW = 1000.0


class Peers:
    def __init__(self, *names: int) -> None:
        self.names = {NAME: "me", **{n: f"n{n:x}" for n in names}}

    def known_peers(self) -> dict[int, str]:
        return dict(self.names)

    def is_reachable(self, name: int) -> bool:
        return name in self.names


class Wire:
    """Records what the allocator sends."""

    def __init__(self, reachable: bool = True) -> None:
        self.reachable = reachable
        self.unicasts: list[tuple[int, bytes]] = []
        self.broadcasts: list[bytes] = []

    def gossip_unicast(self, dst: int, msg: bytes, now: float) -> bool:
        if self.reachable:
            self.unicasts.append((dst, msg))
        return self.reachable

    def gossip_broadcast(self, update: object, now: float) -> None:
        self.broadcasts.extend(update.encode())  # type: ignore[attr-defined]

    def gossip_neighbour_subset(self, update: object, now: float) -> None:
        self.gossip_broadcast(update, now)


def make(
    universe: str = "10.0.3.0/26",
    init: Consensus | Seed | Observer | None = None,
    peers: Peers | None = None,
) -> tuple[Allocator, Wire]:
    cidr = CIDR.parse(universe)
    config = AllocatorConfig(NAME, 7, "me", cidr, cidr, init or Consensus(1))
    alloc = Allocator(config, peers or Peers(), random.Random(1), NOW)
    wire = Wire()
    alloc.attach_gossip(wire)
    return alloc, wire


def replies(alloc: Allocator) -> dict[int, Reply]:
    return {e.req: e for e in alloc.take_effects() if isinstance(e, Reply)}


def addr(text: str) -> int:
    return parse_address(text)


def test_alloc_free_as_go() -> None:
    """Go TestAllocFree: lowest free address per subnet, idempotent, delete gives back."""
    alloc, _ = make()
    sub1, sub2 = CIDR.parse("10.0.3.0/28"), CIDR.parse("10.0.3.32/28")
    alloc.allocate(1, "abcdef", sub1, NOW)
    alloc.allocate(2, "abcdef", sub2, NOW)
    got = replies(alloc)
    assert str(got[1].cidr) == "10.0.3.1/28" and str(got[2].cidr) == "10.0.3.33/28"
    assert alloc.lookup("abcdef", CIDR.parse("10.0.3.0/26")) == [got[1].cidr, got[2].cidr]
    alloc.allocate(3, "baddf00d", sub1, NOW)
    assert str(replies(alloc)[3].cidr) == "10.0.3.2/28"
    alloc.allocate(4, "abcdef", sub1, NOW)  # again: the same address
    assert replies(alloc)[4].cidr == got[1].cidr
    alloc.delete("abcdef", NOW)
    alloc.allocate(5, "b01df00d", sub1, NOW)
    alloc.allocate(6, "b01df00d", sub2, NOW)
    again = replies(alloc)
    assert again[5].cidr == CIDR(addr("10.0.3.1"), 28)
    assert again[6].cidr == CIDR(addr("10.0.3.33"), 28)
    assert alloc.status(NOW).active_ips == 3


def test_first_and_last_address_of_a_subnet_are_never_given() -> None:
    alloc, _ = make("10.0.3.0/30")
    for req in (1, 2, 3):
        alloc.allocate(req, f"c{req}", CIDR.parse("10.0.3.0/30"), NOW)
    got = replies(alloc)
    assert [str(got[r].cidr) for r in (1, 2)] == ["10.0.3.1/30", "10.0.3.2/30"]
    assert 3 not in got  # waits for space
    assert alloc.status(NOW).status == "waiting for IP(s) to become available"
    assert alloc.status(NOW).pending_allocates == ("c3 10.0.3.0/30",)


def test_anonymous_allocation_is_filed_under_its_address() -> None:
    alloc, _ = make()
    alloc.allocate(1, "_", CIDR.parse("10.0.3.0/26"), NOW)
    alloc.take_effects()
    assert alloc.owned() == {"10.0.3.1": [CIDR(addr("10.0.3.1"), 26)]}


def test_out_of_bounds_subnet() -> None:
    alloc, _ = make()
    alloc.allocate(1, "c", CIDR.parse("10.9.0.0/24"), NOW)
    assert replies(alloc)[1].error == "range 10.9.0.0/24 out of bounds: 10.0.3.0/26"


def test_free_and_delete_errors_are_gos() -> None:
    alloc, _ = make()
    with pytest.raises(IpamError, match=r"^Free: address 10.0.3.9 not found for c1$"):
        alloc.free("c1", addr("10.0.3.9"), NOW)
    with pytest.raises(IpamError, match=r"^Delete: no addresses for c1$"):
        alloc.delete("c1", NOW)
    alloc.allocate(1, "c1", CIDR.parse("10.0.3.0/26"), NOW)
    alloc.free("c1", addr("10.0.3.1"), NOW)
    assert alloc.owned() == {}


def test_persistence_comes_before_the_reply_and_round_trips() -> None:
    alloc, _ = make()
    alloc.allocate(1, "c1", CIDR.parse("10.0.3.0/26"), NOW)
    effects = alloc.take_effects()
    kinds = [type(e) for e in effects]
    assert kinds[-1] is Reply and PersistOwned in kinds and PersistRing in kinds
    assert all(not isinstance(e, Reply) for e in effects[:-1])
    owned = [e for e in effects if isinstance(e, PersistOwned)]
    assert owned[-1] == PersistOwned("c1", False, (CIDR(addr("10.0.3.1"), 26),))
    ring = [e for e in effects if isinstance(e, PersistRing)][-1]
    assert ring.data is not None and decode_ring(ring.data).peer == NAME


def test_delete_persists_removal() -> None:
    alloc, _ = make()
    alloc.allocate(1, "c1", CIDR.parse("10.0.3.0/26"), NOW)
    alloc.take_effects()
    alloc.delete("c1", NOW)
    assert PersistOwned("c1", False, ()) in alloc.take_effects()


def test_shutdown_cancels_and_refuses() -> None:
    """Go TestGossipShutdown: allocating after shutdown fails."""
    alloc, _ = make("10.0.3.0/30", init=Consensus(2))
    alloc.allocate(1, "c1", CIDR.parse("10.0.3.0/30"), NOW)  # waits for consensus
    alloc.shutdown(NOW)
    alloc.allocate(2, "c2", CIDR.parse("10.0.3.0/30"), NOW)
    got = replies(alloc)
    assert got[1].error == "cancelled" and got[2].error == "cancelled"


def test_cancel_answers_cancelled_once() -> None:
    alloc, _ = make(init=Consensus(2))
    alloc.allocate(1, "c1", CIDR.parse("10.0.3.0/26"), NOW)
    alloc.cancel(1, NOW)
    alloc.cancel(1, NOW)
    assert [e for e in alloc.take_effects() if isinstance(e, Reply)] == [
        Reply(1, None, "cancelled")
    ]
    assert alloc.status(NOW).pending_allocates == ()


def test_status_lines_through_consensus() -> None:
    alloc, wire = make(init=Consensus(2))
    status = alloc.status(NOW)
    assert (status.status, status.awaiting, status.ring_ready) == ("idle", "", False)
    alloc.prime(1, NOW)
    status = alloc.status(NOW)
    assert status.status == "awaiting consensus (quorum: 2, known: 1)"
    assert status.awaiting == "consensus: 1 of the 2 peers needed for a quorum are known"
    assert status.paxos is not None and status.paxos.elector
    assert wire.broadcasts  # the proposal went out
    assert alloc.next_wakeup() == NOW + 5.0


def test_proposal_is_retried_every_five_seconds() -> None:
    alloc, wire = make(init=Consensus(2))
    alloc.prime(1, NOW)
    sent = len(wire.broadcasts)
    alloc.tick(NOW + 4.9)
    assert len(wire.broadcasts) == sent
    alloc.tick(NOW + 5.0)
    assert len(wire.broadcasts) == sent + 1
    assert alloc.next_wakeup() == NOW + 10.0


def test_observer_is_priming_and_asks_for_a_ring() -> None:
    alloc, wire = make(init=Observer())
    alloc.prime(1, NOW)
    assert alloc.status(NOW).status == "priming"
    assert "observer" in alloc.status(NOW).awaiting
    assert wire.broadcasts


def test_seed_ring_exists_at_once() -> None:
    alloc, _ = make("10.0.0.0/24", init=Seed((OTHER, NAME)), peers=Peers())
    alloc.prime(1, NOW)
    assert replies(alloc)[1] == Reply(1, None, None)
    status = alloc.status(NOW)
    assert status.ring_ready and status.status == "ready"
    assert [(e.token, e.size, e.peer) for e in status.entries] == [
        (addr("10.0.0.0"), 128, NAME),
        (addr("10.0.0.128"), 128, OTHER),
    ]


def test_all_owners_unreachable_and_pending_is_reported() -> None:
    alloc, wire = make("10.0.0.0/24", init=Seed((OTHER,)), peers=Peers())
    wire.reachable = False
    alloc.allocate(1, "c1", CIDR.parse("10.0.0.0/24"), NOW)
    status = alloc.status(NOW)
    assert (
        status.status == "all IP ranges owned by unreachable peers - use 'rmpeer' if they are dead"
    )
    assert status.unreachable_count == 1 and status.unreachable_percentage == 100.0
    assert status.awaiting == (
        "seed peers not yet known: 02:00:00:02:00:00;"
        " space: no reachable peer has free addresses in the subnet"
    )


def test_asked_peer_is_named_while_waiting_for_space() -> None:
    alloc, wire = make("10.0.0.0/24", init=Seed((OTHER,)), peers=Peers(OTHER))
    alloc.allocate(1, "c1", CIDR.parse("10.0.0.0/24"), NOW)
    assert [dst for dst, _ in wire.unicasts] == [OTHER]
    assert wire.unicasts[0][1][0] == 0  # msgSpaceRequest
    assert alloc.status(NOW).awaiting == "space from 02:00:00:02:00:00"
    assert alloc.status(NOW).status == "waiting for IP(s) to become available"


def test_claim_in_our_space_and_conflicts() -> None:
    """Go TestAllocatorClaim, the local half."""
    alloc, _ = make("10.0.3.0/24")
    a5 = CIDR.parse("10.0.3.5/24")
    alloc.claim(1, "b01df00d", a5, False, NOW)
    alloc.claim(2, "b01df00d", a5, False, NOW)  # again: fine
    alloc.claim(3, "abcdef", a5, False, NOW)
    alloc.claim(4, "_", a5, False, NOW)  # anonymous: assumed the same
    got = replies(alloc)
    assert got[1] == Reply(1, a5, None) and got[2] == Reply(2, a5, None)
    assert got[3].error == "Unable to claim: address 10.0.3.5/24 is already owned by b01df00d"
    assert got[4].error is None
    alloc.allocate(5, "b01df00d", CIDR.parse("10.0.3.0/24"), NOW)
    assert replies(alloc)[5].cidr == a5


def test_claim_outside_the_universe_is_just_recorded() -> None:
    alloc, _ = make("10.0.3.0/24")
    outside = CIDR.parse("10.0.4.2/24")
    alloc.claim(1, "abcdef", outside, False, NOW)
    alloc.claim(2, "b01df00d", outside, False, NOW)
    got = replies(alloc)
    assert got[1].error is None
    assert got[2].error == "Unable to claim: address 10.0.4.2/24 already in use by abcdef"
    alloc.delete("abcdef", NOW)  # freeing an address outside our space is fine


def test_claim_waits_for_the_ring_unless_told_not_to() -> None:
    alloc, _ = make(init=Consensus(2))
    alloc.claim(1, "c1", CIDR.parse("10.0.3.5/26"), False, NOW)
    alloc.claim(2, "c2", CIDR.parse("10.0.3.6/26"), True, NOW)
    got = replies(alloc)
    assert 1 not in got and got[2] == Reply(2, CIDR.parse("10.0.3.6/26"), None)
    assert len(alloc.status(NOW).pending_claims) == 2


def test_claim_of_unreachable_peers_address_fails_after_five_tries() -> None:
    alloc, wire = make("10.0.0.0/24", init=Seed((NAME, OTHER)), peers=Peers())
    wire.reachable = False
    alloc.claim(1, "c1", CIDR.parse("10.0.0.200/24"), False, NOW)
    for i in range(1, 5):
        alloc.tick(NOW + 5.0 * i)
    assert not replies(alloc)
    alloc.tick(NOW + 25.0)
    assert replies(alloc)[1].error == (
        "Unable to claim: address 10.0.0.200/24 is owned by other peer 02:00:00:02:00:00"
        " - unknown relay destination: 02:00:00:02:00:00"
    )


def test_next_wakeup_is_infinite_when_idle() -> None:
    alloc, _ = make()
    alloc.allocate(1, "c1", CIDR.parse("10.0.3.0/26"), NOW)
    assert alloc.next_wakeup() == float("inf")


A8_GOSSIP = bytes.fromhex(
    "45ff810301010b676f73736970537461746501ff8200010401034e6f7701040001094e69636b6e616d6573"
    "01ff84000105506178"
    "6f7301ff9000010452696e6701ff92000000"
    "28ff83040101186d61705b6d6573682e506565724e616d655d737472696e6701ff84000106010c0000"
    "1dff8f0401010b476f73736970537461746501ff900001ff8601ff880000"
    "1dff85030102ff8600010201044e616d6501060001035549440106000000"
    "38ff87030102ff88000103010750726f6d69736501ff8a000108416363657074656401ff8a00010b416363"
    "657074656456616c01ff8c000000"
    "30ff890301010a50726f706f73616c494401ff8a0001020105526f756e64010600010850726f706f736572"
    "01ff86000000"
    "32ff8b0301010d416363657074656456616c756501ff8c000102010556616c756501ff8e0001064f726967"
    "696e01ff8a000000"
    "13ff8d0201010556616c756501ff8e0001060000"
    "45ff910301010452696e6701ff92000105010553746172740106000103456e640106000104506565720106"
    "000107456e747269657301ff96000105536565647301ff98000000"
    "16ff9502010107656e747269657301ff960001ff940000"
    "34ff93030102ff940001040105546f6b656e010600010450656572010600010756657273696f6e01060001"
    "04467265650106000000"
    "1dff970201010f5b5d6d6573682e506565724e616d6501ff980001060000"
    "68ff8201fcbebc20000101faaabbccddeeff05686f7374410201fc0a20000001fc0a30000001faaabbccdd"
    "eeff010201fc0a20000001fa02000000000102fd0800000001fc0a28000001faaabbccddeeff02fd080000"
    "000102fa020000000001faaabbccddeeff0000"
)
A8_SPACE_REQUEST = bytes.fromhex(
    "0025ff990301010552616e676501ff9a000102010553746172740106000103456e6401060000000fff9a01"
    "fc0a20000001fc0a20010000"
)
HOST_A, SEED_B = 0xAABBCCDDEEFF, 0x020000000001


def _seeded_host_a() -> tuple[Allocator, Wire]:
    universe = CIDR.parse("10.32.0.0/12")
    config = AllocatorConfig(HOST_A, 1, "hostA", universe, universe, Seed((HOST_A, SEED_B)))
    alloc = Allocator(config, Peers(SEED_B), random.Random(1), 1600000000.0)
    wire = Wire()
    alloc.attach_gossip(wire)
    return alloc, wire


def test_gossip_is_byte_for_byte_what_go_sends() -> None:
    """weave-wire A.8: the seeded ring's gossipState as Go 2.8 encodes it."""
    alloc, _ = _seeded_host_a()
    data = alloc.gossip(1600000000.0)
    assert data is not None and data.encode() == [A8_GOSSIP]


def test_space_request_is_byte_for_byte_what_go_sends() -> None:
    """weave-wire A.8: msgSpaceRequest for 10.32.0.0/24, owned by the other seed peer."""
    alloc, wire = _seeded_host_a()
    alloc.allocate(1, "c1", CIDR.parse("10.32.0.0/24"), 1600000000.0)
    assert wire.unicasts == [(SEED_B, A8_SPACE_REQUEST)]


def test_pending_gossip_keeps_the_newer_snapshot() -> None:
    alloc, _ = make()
    old = alloc.gossip(NOW)
    alloc.allocate(1, "c1", CIDR.parse("10.0.3.0/26"), NOW)
    new = alloc.gossip(NOW + 1)
    assert old is not None and new is not None
    assert old.merge(new).encode() == new.encode() != old.encode()


@pytest.mark.parametrize(
    ("known", "heir"),
    [
        ({OTHER, 0x030000000003}, OTHER),  # a live peer with ranges first
        ({0x030000000003}, 0x030000000003),  # else a live IPAM peer without ranges
        (set(), OTHER),  # else a gone peer with ranges
    ],
)
def test_shutdown_heir_preference(known: set[int], heir: int) -> None:
    peers = Peers(*known)
    alloc, wire = make("10.0.0.0/24", init=Seed((NAME, OTHER)), peers=peers)
    nickname_only = codec.encode_gossip(codec.IpamGossip(0, {0x030000000003: "third"}, None, None))
    alloc.on_gossip(nickname_only, NOW)
    alloc.take_effects()
    alloc.shutdown(NOW)
    (persisted,) = [e for e in alloc.take_effects() if isinstance(e, PersistRing)]
    assert persisted.data is not None
    ring = decode_ring(persisted.data)
    assert {e.peer for e in ring.entries} == {heir} | ({OTHER} if heir != OTHER else set())
    assert wire.broadcasts


def test_transfer_refiles_an_address_without_freeing_it() -> None:
    """The Docker plugin's address moves from its anonymous ident to the container id."""
    alloc, _ = make()
    alloc.allocate(1, "_", CIDR.parse("10.0.3.0/26"), NOW)
    alloc.take_effects()
    assert alloc.owner(addr("10.0.3.1")) == "10.0.3.1"
    moved = alloc.transfer("10.0.3.1", "c" * 64, addr("10.0.3.1"), is_container=True)
    assert moved == CIDR(addr("10.0.3.1"), 26)
    assert alloc.owned() == {"c" * 64: [moved]}
    effects = alloc.take_effects()
    assert PersistOwned("10.0.3.1", False, ()) in effects
    assert PersistOwned("c" * 64, True, (moved,)) in effects
    alloc.allocate(2, "other", CIDR.parse("10.0.3.0/26"), NOW)  # never handed out again
    assert str(replies(alloc)[2].cidr) == "10.0.3.2/26"
    with pytest.raises(IpamError, match=r"Transfer: address 10\.0\.3\.1 not found for nobody"):
        alloc.transfer("nobody", "x", addr("10.0.3.1"), is_container=True)
    assert alloc.owner(addr("10.0.3.9")) is None
