"""The ring CRDT, cases ported from Weave's ipam/ring/ring_test.go plus §9.4 of the spec."""

from __future__ import annotations

import contextlib
import random

import pytest

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.ipam.address import CIDR, Range, parse_address
from weavenet.core.ipam.ring import (
    DifferentRangeError,
    DifferentSeedsError,
    Entry,
    RangeInfo,
    Ring,
    RingError,
    normalize_peers,
)
from weavenet.core.peername import UNKNOWN_PEER_NAME, parse_peer_name

PEER1 = parse_peer_name("01:00:00:00:02:00")
PEER2 = parse_peer_name("02:00:00:00:02:00")
PEER3 = parse_peer_name("03:00:00:00:02:00")

START, END = parse_address("10.0.0.0"), parse_address("10.0.1.0")
DOT8 = parse_address("10.0.0.8")
DOT10, DOT245 = parse_address("10.0.0.10"), parse_address("10.0.0.245")
DOT250 = parse_address("10.0.0.250")
MIDDLE = parse_address("10.0.0.128")


def new_ring(peer: int, start: int = START, end: int = END) -> Ring:
    return Ring.new(start, end, peer)


def claim_it_all(ring: Ring) -> None:
    ring.claim_for_peers([ring.peer])


def E(token: int, peer: int, free: int = 0, version: int = 0) -> Entry:
    return Entry(token, peer, version, free)


def merge(r1: Ring, r2: Ring) -> bool:
    """Go's test helper: a range "has allocations" if its entry reports less free than its size."""

    def check(ranges: list[Range]) -> bool:
        for r in ranges:
            size = r1.distance(r.start, r.end)
            entry = next((e for e in r1.entries if e.token == r.start), None)
            if entry is not None and entry.free < size:
                return True
        return False

    return r1.merge(r2, check)


def test_invariants() -> None:
    ring = new_ring(PEER1)
    ring.entries = [E(DOT245, PEER1), E(DOT10, PEER2)]
    assert str(ring.invariant_error()) == "Ring not sorted"
    ring.entries = [E(DOT245, PEER1), E(DOT245, PEER2)]
    assert str(ring.invariant_error()) == "Token appears twice in ring"
    ring = new_ring(PEER1, DOT10, DOT245)
    ring.entries = [E(START, PEER1)]
    assert str(ring.invariant_error()) == "Token is out of range"
    ring.entries = [E(END, PEER1)]
    assert str(ring.invariant_error()) == "Token is out of range"
    ring = new_ring(PEER1)
    ring.entries = [E(START, PEER1, free=128), E(MIDDLE, PEER2, free=129)]
    with pytest.raises(RingError) as info:
        ring.check_invariants()
    assert str(info.value) == ("Entry 10.0.0.128-10.0.0.0 reporting too much free space: 129 > 128")
    assert isinstance(info.value, RemoteProtocolError)


def test_new_rejects_empty_universe() -> None:
    with pytest.raises(LocalProtocolError):
        Ring.new(END, START, PEER1)


def test_insert_and_all_range_info() -> None:
    ring = new_ring(PEER1)
    ring.claim_for_peers([PEER1])
    ring.grant_range_to_host(DOT245, END, PEER1)  # a no-op split: new token, same owner
    assert ring.all_range_info() == [
        RangeInfo(PEER1, Range(START, DOT245), 1),
        RangeInfo(PEER1, Range(DOT245, END), 0),
    ]


def test_all_range_info_splits_over_zero() -> None:
    ring = new_ring(PEER1)
    ring.entries = [E(DOT10, PEER1), E(MIDDLE, PEER2, version=3)]
    assert ring.all_range_info() == [
        RangeInfo(PEER1, Range(DOT10, MIDDLE), 0),
        RangeInfo(PEER2, Range(START, DOT10), 3),
        RangeInfo(PEER2, Range(MIDDLE, END), 3),
    ]


def test_grant_simple() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    claim_it_all(ring1)
    assert ring1.entries == [E(START, PEER1, 256)]
    ring1.grant_range_to_host(START, END, PEER2)
    ring2.entries = [E(START, PEER2, 256, version=1)]
    assert ring1.entries == ring2.entries
    ring2.grant_range_to_host(DOT10, END, PEER1)
    ring1.entries = [E(START, PEER2, 10, version=2), E(DOT10, PEER1, 246)]
    assert ring2.entries == ring1.entries
    ring1.grant_range_to_host(DOT245, END, PEER2)
    assert ring1.entries == [
        E(START, PEER2, 10, version=2),
        E(DOT10, PEER1, 235, version=1),
        E(DOT245, PEER2, 11),
    ]
    # grant a range spanning a live token
    ring1.entries = [E(START, PEER1, 10, version=2), E(DOT10, PEER1, 235), E(DOT245, PEER1, 10)]
    ring1.grant_range_to_host(DOT10, END, PEER2)
    assert ring1.entries == [
        E(START, PEER1, 10, version=2),
        E(DOT10, PEER2, 235, version=1),
        E(DOT245, PEER2, 10, version=1),
    ]


def test_grant_split() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.entries = [E(START, PEER1, 256)]
    merge(ring2, ring1)
    assert ring2.entries == ring1.entries
    ring1.grant_range_to_host(DOT10, DOT245, PEER2)
    assert ring1.entries == [
        E(START, PEER1, 10, version=1),
        E(DOT10, PEER2, 235),
        E(DOT245, PEER1, 11),
    ]
    ring1.entries = [E(START, PEER1, 10, version=2), E(DOT10, PEER1, 118), E(MIDDLE, PEER1, 127)]
    ring1.grant_range_to_host(DOT10, DOT245, PEER2)
    assert ring1.entries == [
        E(START, PEER1, 10, version=2),
        E(DOT10, PEER2, 118, version=1),
        E(MIDDLE, PEER2, 117, version=1),
        E(DOT245, PEER1, 11),
    ]


def test_grant_preconditions_are_local_errors() -> None:
    ring = new_ring(PEER1)
    with pytest.raises(LocalProtocolError):
        ring.grant_range_to_host(START, END, PEER2)  # empty ring
    claim_it_all(ring)
    ring.grant_range_to_host(MIDDLE, END, PEER2)
    with pytest.raises(LocalProtocolError):
        ring.grant_range_to_host(DOT245, END, PEER3)  # not ours
    with pytest.raises(LocalProtocolError):
        ring.grant_range_to_host(DOT10, DOT10, PEER3)  # empty range


def test_merge_simple() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    claim_it_all(ring1)
    ring1.grant_range_to_host(MIDDLE, END, PEER2)
    assert merge(ring2, ring1) is True
    assert ring1.entries == [E(START, PEER1, 128, version=1), E(MIDDLE, PEER2, 128)]
    assert ring2.entries == ring1.entries
    ring1.grant_range_to_host(START, MIDDLE, PEER2)
    ring2.grant_range_to_host(MIDDLE, END, PEER1)
    merge(ring2, ring1)
    merge(ring1, ring2)
    assert ring1.entries == [E(START, PEER2, 128, version=2), E(MIDDLE, PEER1, 128, version=1)]
    assert ring2.entries == ring1.entries


def test_merge_with_conflicts() -> None:
    # same token and version, different owner, no allocations: the higher free count wins
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.entries = [E(START, PEER1, 256, version=1)]
    ring2.entries = [E(START, PEER2, 256, version=1)]
    merge(ring1, ring2)
    assert ring1.entries == [E(START, PEER1, 256, version=1)]  # tie on free: ours kept
    ring1.entries = [E(START, PEER1, 200, version=1)]
    ring3 = new_ring(PEER3)
    ring3.entries = [E(START, PEER2, 256, version=1)]
    ring2.entries = [E(START, PEER1, 100, version=1)]
    assert merge(ring3, ring2) is False  # not our entry, ours has more free
    # same token and version, different owner, we have allocations: rejected
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.entries = [E(START, PEER1, 128, version=1)]
    ring2.entries = [E(START, PEER2, 256, version=1)]
    with pytest.raises(RingError, match=r"^Inconsistent entries for 10\.0\.0\.0: owned by 01:00"):
        merge(ring1, ring2)
    assert ring1.entries == [E(START, PEER1, 128, version=1)]
    # newer version of our own token that still names us: accepted, we re-assert +1
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.entries = [E(START, PEER1)]
    ring2.entries = [E(START, PEER1, version=1)]
    assert merge(ring1, ring2) is False  # as Go: the re-assertion does not count as an update
    assert ring1.entries == [E(START, PEER1, version=2)]
    # newer version giving our token away, no allocations: accepted (repair path)
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.entries = [E(START, PEER1, 256)]
    ring2.entries = [E(START, PEER2, 256, version=1)]
    assert merge(ring1, ring2) is True
    assert ring1.entries == [E(START, PEER2, 256, version=1)]
    # ... with allocations: rejected
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.entries = [E(START, PEER1, 128)]
    ring2.entries = [E(START, PEER2, version=1)]
    with pytest.raises(RingError) as info:
        merge(ring1, ring2)
    assert str(info.value) == (
        "Received update for IP range I own at 10.0.0.0 v0: incoming message says owner"
        " 02:00:00:00:02:00 v1"
    )
    # a token splitting our range, nothing allocated in the part given away: accepted
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.entries = [E(START, PEER1, 256, version=1)]
    ring2.entries = [E(START, PEER1, 128, version=2), E(MIDDLE, PEER2, 128)]
    assert merge(ring1, ring2) is True
    # our own entry came back newer: we re-assert it (v3); our free space is cut to fit
    assert ring1.entries == [E(START, PEER1, 128, version=3), E(MIDDLE, PEER2, 128)]


def test_merge_resets_our_free_space_after_a_split() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.entries = [E(START, PEER1, 245), E(DOT245, PEER2, 11)]
    ring2.entries = [E(START, PEER1, 10), E(DOT10, PEER2, 235), E(DOT245, PEER2, 11)]
    assert merge(ring1, ring2) is True
    assert ring1.entries == ring2.entries


def test_merge_errors() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring2.entries = [E(MIDDLE, PEER2), E(START, PEER2)]
    with pytest.raises(RingError, match=r"^Ring not sorted$"):
        merge(ring1, ring2)
    ring2 = new_ring(PEER2, START, MIDDLE)
    with pytest.raises(DifferentRangeError) as rinfo:
        merge(ring1, ring2)
    assert str(rinfo.value) == "Received range differs from ours"
    assert rinfo.value.received == Range(START, MIDDLE) and rinfo.value.ours == Range(START, END)
    ring2 = new_ring(PEER2)
    ring1.entries = [E(START, PEER1)]
    ring2.entries = [E(START, PEER2)]
    with pytest.raises(RingError):
        merge(ring1, ring2)
    ring1.entries = [E(START, PEER1)]
    ring2.entries = [E(MIDDLE, PEER2)]
    with pytest.raises(RingError) as info:
        merge(ring1, ring2)
    assert str(info.value) == (
        "Peer 02:00:00:00:02:00 says it owns the IP range from 10.0.0.128, which I think I own"
    )


def test_merge_different_seeds() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.claim_for_peers([PEER1, PEER2])
    ring2.claim_for_peers([PEER1, PEER3])
    before = ring1.canonical()
    with pytest.raises(DifferentSeedsError) as info:
        merge(ring1, ring2)
    assert str(info.value) == "Received ring was seeded differently from ours"
    assert info.value.received == (PEER1, PEER3) and info.value.ours == (PEER1, PEER2)
    assert ring1.canonical() == before


def test_merge_adopts_seeds_when_ours_are_empty() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring2.claim_for_peers([PEER1, PEER2])
    assert merge(ring1, ring2) is True
    assert ring1.seeds == [PEER1, PEER2]
    assert ring1.owned_ranges() == [Range(START, MIDDLE)]


def test_merge_more() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    claim_it_all(ring1)
    merge(ring2, ring1)
    assert ring2.entries == [E(START, PEER1, 256)]
    ring1.grant_range_to_host(START, END, PEER2)
    merge(ring2, ring1)
    assert ring2.entries == [E(START, PEER2, 256, version=1)]
    ring2.grant_range_to_host(MIDDLE, END, PEER1)
    assert ring2.entries == [E(START, PEER2, 128, version=2), E(MIDDLE, PEER1, 128)]
    assert ring1.entries == [E(START, PEER2, 256, version=1)]
    merge(ring1, ring2)
    assert ring1.entries == ring2.entries
    assert merge(ring2, ring1) is False  # a no-op
    assert ring1.entries == [E(START, PEER2, 128, version=2), E(MIDDLE, PEER1, 128)]


def test_merge_split() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.entries = [E(START, PEER2, 256)]
    merge(ring2, ring1)
    ring2.grant_range_to_host(DOT10, DOT245, PEER1)
    expected = [E(START, PEER2, 10, version=1), E(DOT10, PEER1, 235), E(DOT245, PEER2, 11)]
    assert ring2.entries == expected
    merge(ring1, ring2)
    assert ring1.entries == expected


def test_merge_split2() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    ring1.entries = [E(START, PEER2, 250), E(DOT250, PEER2, 5)]
    merge(ring2, ring1)
    ring2.grant_range_to_host(DOT10, DOT245, PEER1)
    expected = [
        E(START, PEER2, 10, version=1),
        E(DOT10, PEER1, 235),
        E(DOT245, PEER2, 5),
        E(DOT250, PEER2, 5),
    ]
    assert ring2.entries == expected
    merge(ring1, ring2)
    assert ring1.entries == expected


def test_merge_old_message_and_empty_gossip() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    claim_it_all(ring1)
    assert merge(ring1, ring2) is False  # empty gossip: used to panic in Go
    merge(ring2, ring1)
    ring1.grant_range_to_host(MIDDLE, END, PEER1)
    merge(ring1, ring2)  # an old copy of our own ring
    ring1.grant_range_to_host(START, MIDDLE, PEER2)
    merge(ring2, ring1)


def test_find_free() -> None:
    rng = random.Random(1)
    ring = new_ring(PEER1)
    assert ring.choose_peers_to_ask_for_space(START, END, rng) == []
    ring.entries = [E(START, PEER1)]
    ring.report_free({START: 10})
    assert ring.choose_peers_to_ask_for_space(START, END, rng) == []  # never ourselves
    ring.entries = [E(START, PEER1, 1), E(MIDDLE, PEER1, 1)]
    assert ring.choose_peers_to_ask_for_space(START, END, rng) == []
    ring.entries = [E(START, PEER2, 1)]
    assert ring.choose_peers_to_ask_for_space(START, END, rng) == [PEER2]
    ring.entries = [E(START, PEER2, 1), E(MIDDLE, PEER3, 1)]
    assert ring.choose_peers_to_ask_for_space(START, MIDDLE, rng) == [PEER2]
    assert ring.choose_peers_to_ask_for_space(MIDDLE, END, rng) == [PEER3]
    assert sorted(ring.choose_peers_to_ask_for_space(START, END, rng)) == [PEER2, PEER3]


def test_choose_peers_weights_by_free_space() -> None:
    ring = new_ring(PEER1)
    ring.entries = [E(START, PEER2, 127), E(MIDDLE, PEER3, 1)]
    rng = random.Random(7)
    firsts = [ring.choose_peers_to_ask_for_space(START, END, rng)[0] for _ in range(200)]
    assert firsts.count(PEER2) > 150


def test_report_free() -> None:
    ring1, ring2 = new_ring(PEER1), new_ring(PEER2)
    claim_it_all(ring1)
    ring1.grant_range_to_host(MIDDLE, END, PEER2)
    merge(ring2, ring1)
    assert ring2.report_free({r.start: 0 for r in ring2.owned_ranges()}) is True
    assert ring2.entries[1] == E(MIDDLE, PEER2, 0, version=1)
    assert ring2.report_free({MIDDLE: 0}) is False
    with pytest.raises(LocalProtocolError):
        ring2.report_free({START: 3})  # not ours


def test_report_free_joins_the_range_split_over_zero() -> None:
    ring = new_ring(PEER1)
    ring.entries = [E(DOT10, PEER2, 118), E(MIDDLE, PEER1, 138)]
    assert ring.owned_ranges() == [Range(START, DOT10), Range(MIDDLE, END)]
    assert ring.report_free({START: 4, MIDDLE: 100}) is True
    assert ring.entries[1] == E(MIDDLE, PEER1, 104, version=1)


def test_misc() -> None:
    ring = new_ring(PEER1)
    assert ring.empty()
    claim_it_all(ring)
    assert not ring.empty()
    assert str(ring) == "Ring [10.0.0.0, 10.0.1.0)\n  10.0.0.0 -> 01:00:00:00:02:00 (v0)"
    assert ring.describe({PEER1: "one"}) == "\n  10.0.0.0 -> 01:00:00:00:02:00 (one) (v0)"


def test_owned_range() -> None:
    ring1 = new_ring(PEER1)
    claim_it_all(ring1)
    assert ring1.owned_ranges() == [Range(START, END)]
    ring1.grant_range_to_host(MIDDLE, END, PEER2)
    assert ring1.owned_ranges() == [Range(START, MIDDLE)]
    ring2 = new_ring(PEER2)
    merge(ring2, ring1)
    assert ring2.owned_ranges() == [Range(MIDDLE, END)]
    ring2.entries = [E(MIDDLE, PEER2)]
    assert ring2.owned_ranges() == [Range(START, MIDDLE), Range(MIDDLE, END)]
    ring2.entries = [E(DOT10, PEER2), E(MIDDLE, PEER2)]
    assert ring2.owned_ranges() == [Range(START, DOT10), Range(DOT10, MIDDLE), Range(MIDDLE, END)]
    assert ring2.owned_ranges_of_peer(PEER1) == []


def test_transfer() -> None:
    ring1 = new_ring(PEER1)
    claim_it_all(ring1)
    ring1.grant_range_to_host(MIDDLE, END, PEER2)
    assert ring1.transfer(PEER2, PEER1) == [Range(MIDDLE, END)]
    assert ring1.entries[1] == E(MIDDLE, PEER1, 128, version=100)
    assert ring1.owned_ranges() == [Range(START, MIDDLE), Range(MIDDLE, END)]
    ring1.grant_range_to_host(DOT10, MIDDLE, PEER2)
    assert ring1.owned_ranges() == [Range(START, DOT10), Range(MIDDLE, END)]
    assert ring1.transfer(PEER3, PEER1) == []


def test_transfer_splits_over_zero() -> None:
    ring = new_ring(PEER1)
    ring.entries = [E(DOT10, PEER1), E(MIDDLE, PEER2, 5, version=7)]
    assert ring.transfer(PEER2, PEER3) == [Range(START, DOT10), Range(MIDDLE, END)]
    assert ring.entries[1] == E(MIDDLE, PEER3, 5, version=107)


def test_owner() -> None:
    ring = new_ring(PEER1)
    assert ring.contains(START) and not ring.contains(END)
    assert ring.owner(START) == UNKNOWN_PEER_NAME
    claim_it_all(ring)
    ring.grant_range_to_host(MIDDLE, END, PEER2)
    assert ring.owner(START) == PEER1
    assert ring.owner(MIDDLE - 1) == PEER1
    assert ring.owner(MIDDLE) == PEER2
    with pytest.raises(LocalProtocolError):
        ring.owner(END)
    ring.entries = [E(DOT10, PEER1), E(MIDDLE, PEER2)]
    assert ring.owner(START) == PEER2  # wraps round from the last token
    assert ring.peer_names() == {PEER1, PEER2}


def test_pick_peer_for_transfer() -> None:
    ring = new_ring(PEER1)
    assert ring.pick_peer_for_transfer(lambda _: True) == UNKNOWN_PEER_NAME
    ring.entries = [E(START, PEER1), E(DOT10, PEER2), E(MIDDLE, PEER3)]
    assert ring.pick_peer_for_transfer(lambda _: True) == PEER2
    assert ring.pick_peer_for_transfer(lambda p: p == PEER3) == PEER3
    assert ring.pick_peer_for_transfer(lambda p: p == PEER1) == UNKNOWN_PEER_NAME


def make_peers(n: int) -> list[int]:
    return [parse_peer_name(f"{i // 100:02d}:{i % 100:02d}:00:00:00:ff") for i in range(n)]


def test_claim_for_peers_small_range() -> None:
    peers = make_peers(12)
    for i in range(len(peers)):
        ring = new_ring(peers[0], START, DOT8)
        ring.claim_for_peers(peers[: i + 1])
        ring.check_invariants()
        assert sum(e.free for e in ring.entries) == DOT8 - START
        assert ring.seeds == peers[: i + 1]


def test_claim_for_two_peers_as_spec_a8() -> None:
    universe = CIDR.parse("10.32.0.0/12").range()
    a, b = parse_peer_name("aa:bb:cc:dd:ee:ff"), parse_peer_name("02:00:00:00:00:01")
    ring = Ring.new(universe.start, universe.end, a)
    ring.claim_for_peers(normalize_peers([a, b, a]))
    assert ring.entries == [
        E(parse_address("10.32.0.0"), b, 524288),
        E(parse_address("10.40.0.0"), a, 524288),
    ]
    assert ring.seeds == [b, a]


def test_claim_for_three_peers() -> None:
    universe = CIDR.parse("10.32.0.0/12").range()
    ring = Ring.new(universe.start, universe.end, PEER1)
    ring.claim_for_peers([PEER1, PEER2, PEER3])
    quarter = universe.size() // 4
    assert ring.entries == [
        E(universe.start, PEER1, 2 * quarter),
        E(universe.start + 2 * quarter, PEER2, quarter),
        E(universe.start + 3 * quarter, PEER3, quarter),
    ]
    for e in ring.entries:  # CIDR-aligned blocks
        assert e.token % e.free == 0


def test_claim_for_peers_needs_an_empty_ring() -> None:
    ring = new_ring(PEER1)
    claim_it_all(ring)
    with pytest.raises(LocalProtocolError):
        ring.claim_for_peers([PEER2])
    with pytest.raises(LocalProtocolError):
        new_ring(PEER1).claim_for_peers([])


def test_fuzz_ring_merges_never_break_ours() -> None:
    """Go's TestFuzzRing: merging random (good or bad) rings never corrupts ours."""
    rng = random.Random(42)
    peers = make_peers(25)
    space = END - START

    def random_ring(good: bool) -> Ring:
        count = rng.randrange(space)
        tokens = [rng.randrange(space) for _ in range(count)]
        if good:
            tokens = sorted(set(tokens))
        ring = new_ring(rng.choice(peers))
        ring.entries = [E(START + t, rng.choice(peers)) for t in tokens]
        return ring

    for _ in range(200):
        ring1 = random_ring(True)
        ring1.check_invariants()
        for other in (random_ring(True), random_ring(False)):
            with contextlib.suppress(RingError):
                merge(ring1, other)
            ring1.check_invariants()


def test_copy_and_restore() -> None:
    ring = new_ring(PEER1)
    ring.claim_for_peers([PEER1, PEER2])
    twin = ring.copy()
    assert twin == ring and twin.entries[0] is not ring.entries[0]
    other = new_ring(PEER3)
    other.restore(ring)
    assert other.canonical() == ring.canonical() and other.peer == PEER1
