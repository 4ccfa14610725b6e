"""Ring properties: local operations keep the invariants and a single owner per address;
merge is a CRDT join (commutative, associative, idempotent) on replicas of one history;
an invalid ring is refused and leaves ours untouched."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.ipam.address import Range
from weavenet.core.ipam.ring import Entry, Ring, RingError

START, SIZE = 0x0A000000, 256
END = START + SIZE
PEERS = [0x010000000001, 0x020000000002, 0x030000000003, 0x040000000004]


def no_allocations(_: list[Range]) -> bool:
    return False


def owners_partition_universe(ring: Ring) -> None:
    """Every address of the universe is in exactly one peer's owned ranges."""
    covered: list[Range] = []
    for peer in ring.peer_names():
        covered += ring.owned_ranges_of_peer(peer)
    covered.sort()
    pos = START
    for r in covered:
        assert r.start == pos and r.end > r.start
        pos = r.end
    assert pos == END
    for r in covered:  # owner() agrees with the ranges
        assert ring.owner(r.start) == ring.owner(r.end - 1)


@dataclass
class Cluster:
    """One replica of the ring per peer; only owners change their entries (no rmpeer)."""

    rings: list[Ring]

    @classmethod
    def fresh(cls, n_peers: int) -> Cluster:
        rings = [Ring.new(START, END, p) for p in PEERS[:n_peers]]
        rings[0].claim_for_peers(sorted(PEERS[:n_peers]))
        return cls(rings)

    def grant(self, who: int, pick: int, offset: int, to: int) -> None:
        ring = self.rings[who % len(self.rings)]
        owned = ring.owned_ranges()
        if not owned:
            return
        r = owned[pick % len(owned)]
        start = r.start + offset % r.size()
        ring.grant_range_to_host(start, r.end, PEERS[to % len(self.rings)])

    def report(self, who: int, free: int) -> None:
        ring = self.rings[who % len(self.rings)]
        owned = ring.owned_ranges()
        if owned:
            ring.report_free(_fitting_free(ring, owned, free))

    def gossip(self, src: int, dst: int) -> None:
        source = self.rings[src % len(self.rings)]
        self.rings[dst % len(self.rings)].merge(source, no_allocations)


def _fitting_free(ring: Ring, owned: list[Range], free: int) -> dict[int, int]:
    """A free count per owned range that fits it (the wrapping halves share one entry)."""
    report = {r.start: min(free, r.size()) for r in owned}
    if START in report and ring.entries[0].token != START:
        last = ring.entries[-1].token
        report[START] = 0
        report[last] = min(free, ring.distance(last, ring.entries[0].token))
    return report


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(0, 9), st.integers(0, 9), st.integers(0, 255)),
        st.tuples(st.just("report"), st.integers(0, 9), st.integers(0, 256)),
        st.tuples(st.just("gossip"), st.integers(0, 9), st.integers(0, 9)),
    ),
    max_size=30,
)


def run(n_peers: int, ops: list[tuple[object, ...]]) -> Cluster:
    cluster = Cluster.fresh(n_peers)
    for op in ops:
        args = [int(a) for a in op[1:]]  # type: ignore[call-overload]
        if op[0] == "grant":
            cluster.grant(args[0], args[1], args[2], args[1] + args[0])
        elif op[0] == "report":
            cluster.report(args[0], args[1])
        else:
            cluster.gossip(args[0], args[1])
    return cluster


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4), OPS)
def test_local_operations_keep_invariants_and_one_owner(n_peers: int, ops: list) -> None:
    cluster = run(n_peers, ops)
    for ring in cluster.rings:
        ring.check_invariants()
        if not ring.empty():
            owners_partition_universe(ring)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4), OPS, st.integers(1, 4))
def test_transfer_keeps_one_owner(n_peers: int, ops: list, heir: int) -> None:
    ring = run(n_peers, ops).rings[0]
    gone = ring.entries[0].peer
    before = {p: ring.owned_ranges_of_peer(p) for p in ring.peer_names()}
    moved = ring.transfer(gone, PEERS[heir - 1])
    ring.check_invariants()
    owners_partition_universe(ring)
    assert moved == before[gone]
    assert gone == PEERS[heir - 1] or ring.owned_ranges_of_peer(gone) == []


def merged(into: Ring, *others: Ring) -> Ring:
    result = into.copy()
    for other in others:
        result.merge(other, no_allocations)
    return result


def entries_of(ring: Ring) -> tuple[object, ...]:
    return ring.canonical()


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 4), OPS, st.integers(0, 9), st.integers(0, 9), st.integers(0, 9))
def test_merge_is_a_join(n_peers: int, ops: list, i: int, j: int, k: int) -> None:
    rings = run(n_peers, ops).rings
    a, b, c = (rings[x % len(rings)] for x in (i, j, k))
    try:
        ab, ba = merged(a, b), merged(b, a)
        abc, a_bc = merged(ab, c), merged(a, merged(b, c))
    except RingError:
        return  # only successful merges are compared
    assert entries_of(ab) == entries_of(ba)
    assert entries_of(abc) == entries_of(a_bc)
    again = ab.copy()
    assert again.merge(ab, no_allocations) is False
    assert entries_of(again) == entries_of(ab)
    assert again.merge(a, no_allocations) is False  # merging an older copy changes nothing


def corrupt(ring: Ring, how: int, where: int) -> Ring:
    bad = ring.copy()
    es = bad.entries
    if how == 0 and len(es) >= 2:
        es[0], es[-1] = es[-1], es[0]  # not sorted
    elif how == 1 and es:
        es.insert(0, es[where % len(es)].copy())  # a repeated token
        es.sort(key=lambda e: e.token)
    elif how == 2:
        es.append(Entry(END + where, PEERS[0]))  # a token outside the universe
    else:
        e = es[where % len(es)] if es else None
        if e is None:
            es.append(Entry(START, PEERS[1], 0, SIZE + 1))
        else:
            e.free = bad.distance(e.token, es[(es.index(e) + 1) % len(es)].token) + 1
    return bad


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4), OPS, st.integers(0, 3), st.integers(0, 50), st.integers(0, 9))
def test_invalid_ring_is_refused_and_ours_unchanged(
    n_peers: int, ops: list, how: int, where: int, who: int
) -> None:
    rings = run(n_peers, ops).rings
    ours = rings[who % len(rings)]
    bad = corrupt(rings[(who + 1) % len(rings)], how, where)
    if bad.invariant_error() is None:
        return  # e.g. swapping the ends of a one-entry ring
    before = ours.canonical()
    try:
        ours.merge(bad, lambda _: True)
    except RingError:
        pass
    else:
        raise AssertionError("an invalid ring was merged")
    assert ours.canonical() == before


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 4), OPS, st.integers(0, 9), st.integers(0, 9))
def test_failed_merge_leaves_ours_unchanged(n_peers: int, ops: list, i: int, j: int) -> None:
    """With every range "allocated", a merge may fail; it then changes nothing."""
    rings = run(n_peers, ops).rings
    ours, theirs = rings[i % len(rings)].copy(), rings[j % len(rings)]
    before = ours.canonical()
    with contextlib.suppress(RingError):
        ours.merge(theirs, lambda _: True)
        return
    assert ours.canonical() == before
