"""Space against a model (a set of free and a set of allocated addresses): allocate gives
the lowest free address of the range and never an allocated one; claim, free and donate
keep the two sets disjoint and the counts right."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.ipam.address import Range
from weavenet.core.ipam.space import Space, SpaceError

BASE = 0x0A000000
SIZE = 96

ADDR = st.integers(BASE - 4, BASE + SIZE + 4)
RANGES = st.tuples(ADDR, ADDR).map(lambda t: Range(min(t), max(t)))
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), RANGES),
        st.tuples(st.just("allocate"), RANGES),
        st.tuples(st.just("claim"), ADDR),
        st.tuples(st.just("free"), ADDR),
        st.tuples(st.just("donate"), RANGES),
        st.tuples(st.just("update"), st.lists(RANGES, max_size=3)),
    ),
    max_size=60,
)


class Model:
    def __init__(self) -> None:
        self.free: set[int] = set()
        self.allocated: set[int] = set()

    def check(self, space: Space) -> None:
        assert space.num_free_addresses() == len(self.free)
        assert space.num_owned_addresses() == len(self.allocated)
        assert _expand(space.free_runs()) == self.free
        assert _expand(space.allocated_runs()) == self.allocated
        assert not self.free & self.allocated
        assert _expand(space.owned_ranges()) == self.free | self.allocated


def _expand(ranges: list[Range]) -> set[int]:
    return {a for r in ranges for a in range(r.start, r.end)}


def apply(space: Space, model: Model, op: tuple[object, ...]) -> None:
    kind, arg = op
    if kind == "add":
        assert isinstance(arg, Range)
        if any(arg.contains(a) for a in model.allocated):
            return  # Go's Add would mark allocated addresses free too; the allocator never does
        space.add(arg.start, arg.size())
        model.free |= set(range(arg.start, arg.end))
    elif kind == "allocate":
        assert isinstance(arg, Range)
        in_range = sorted(a for a in model.free if arg.contains(a))
        got = space.allocate(arg)
        assert got == (in_range[0] if in_range else None)
        if got is not None:
            model.free.discard(got)
            model.allocated.add(got)
    elif kind in ("claim", "free"):
        assert isinstance(arg, int)
        _claim_or_free(space, model, kind, arg)
    elif kind == "donate":
        assert isinstance(arg, Range)
        _donate(space, model, arg)
    else:
        assert isinstance(arg, list)
        space.update_ranges(arg)
        model.free |= _expand(arg) - model.allocated


def _claim_or_free(space: Space, model: Model, kind: object, addr: int) -> None:
    if kind == "claim":
        if addr in model.free:
            space.claim(addr)
            model.free.discard(addr)
            model.allocated.add(addr)
        else:
            try:
                space.claim(addr)
            except SpaceError:
                return
            raise AssertionError("claimed an address that is not free")
    elif addr in model.allocated and addr not in model.free:
        space.free(addr)
        model.allocated.discard(addr)
        model.free.add(addr)
    else:
        try:
            space.free(addr)
        except SpaceError:
            return
        raise AssertionError("freed an address that is not allocated")


def _donate(space: Space, model: Model, r: Range) -> None:
    free_in = {a for a in model.free if r.contains(a)}
    got = space.donate(r)
    if not free_in:
        assert got is None
        return
    assert got is not None and got.size() > 0
    given_away = set(range(got.start, got.end))
    assert given_away <= free_in
    assert got.start % got.size() == 0 and got.size() & (got.size() - 1) == 0  # a CIDR block
    assert got.size() <= (len(free_in) + 1) // 2  # at most half, rounded up
    model.free -= given_away


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_space_matches_model(ops: list[tuple[object, ...]]) -> None:
    space, model = Space(), Model()
    for op in ops:
        apply(space, model, op)
        model.check(space)


@settings(max_examples=200, deadline=None)
@given(st.lists(ADDR, max_size=40), RANGES)
def test_has_allocations_means_not_all_free(claims: list[int], r: Range) -> None:
    space = Space()
    space.add(BASE, SIZE)
    for addr in claims:
        if space.is_free(addr):
            space.claim(addr)
    all_free = all(space.is_free(a) for a in range(r.start, r.end))
    assert space.has_allocations([r]) is (not all_free)
    assert space.num_free_addresses_in_range(r) == sum(
        1 for a in range(r.start, r.end) if space.is_free(a)
    )
