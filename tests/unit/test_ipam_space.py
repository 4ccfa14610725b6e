"""Our free/allocated address space, cases ported from Weave's ipam/space/space_test.go."""

from __future__ import annotations

import pytest

from weavenet.core.ipam.address import Range, parse_address
from weavenet.core.ipam.space import Space, SpaceError, _add, _contains, _subtract


def ip(text: str) -> int:
    return parse_address(text)


def nr(start: int, size: int) -> Range:
    return Range(start, start + size)


def make_space(start: int, size: int) -> Space:
    space = Space()
    space.add(start, size)
    return space


def test_boundary_lists() -> None:
    a: list[int] = []
    steps: list[tuple[str, int, int, list[int]]] = [
        ("add", 100, 200, [100, 200]),
        ("add", 700, 800, [100, 200, 700, 800]),
        ("add", 300, 400, [100, 200, 300, 400, 700, 800]),
        ("add", 400, 500, [100, 200, 300, 500, 700, 800]),
        ("add", 600, 700, [100, 200, 300, 500, 600, 800]),
        ("add", 500, 600, [100, 200, 300, 800]),
        ("sub", 500, 600, [100, 200, 300, 500, 600, 800]),
        ("sub", 600, 700, [100, 200, 300, 500, 700, 800]),
        ("sub", 400, 500, [100, 200, 300, 400, 700, 800]),
        ("sub", 300, 400, [100, 200, 700, 800]),
        ("sub", 700, 800, [100, 200]),
        ("sub", 100, 200, []),
    ]
    for op, start, end, expected in steps:
        (_add if op == "add" else _subtract)(a, start, end)
        assert a == expected, (op, start, end)
        if a == [100, 200]:
            assert not _contains(a, 99) and _contains(a, 100)
            assert _contains(a, 199) and not _contains(a, 200)


def test_lowlevel_space() -> None:
    s = Space()
    assert s.num_free_addresses() == 0
    assert s.allocate(nr(0, 1000)) is None
    s.add(100, 100)
    assert s.num_free_addresses() == 100
    assert s.allocate(nr(0, 1000)) == 100
    assert s.num_free_addresses() == 99
    s.claim(150)
    assert s.num_free_addresses() == 98
    s.free(100)
    assert s.num_free_addresses() == 99
    with pytest.raises(SpaceError, match=r"^Address 0\.0\.0\.0 is not ours$"):
        s.free(0)
    with pytest.raises(SpaceError, match=r"^Address 0\.0\.0\.100 is not ours$"):
        s.free(100)
    assert s.donate(nr(0, 1000)) == nr(0xA0, 0x20)


def test_donate_when_addresses_are_scarce() -> None:
    s = Space()
    assert s.donate(nr(0, 1000)) is None
    s.add(0, 3)
    s.claim(0)
    s.claim(2)
    assert s.donate(nr(0, 1000)) == nr(1, 1)
    assert s.donate(nr(0, 1000)) is None


def test_claim_errors() -> None:
    s = make_space(ip("10.0.0.0"), 4)
    s.claim(ip("10.0.0.1"))
    with pytest.raises(SpaceError, match=r"^Address 10\.0\.0\.1 is not free to claim$"):
        s.claim(ip("10.0.0.1"))
    with pytest.raises(SpaceError, match="is not free to claim"):
        s.claim(ip("10.0.0.9"))


def test_space_allocate() -> None:
    start = ip("10.0.3.4")
    size = 20
    space = make_space(start, size)
    assert space.num_free_addresses() == 20 and space.num_owned_addresses() == 0
    addr1 = space.allocate(nr(start, size))
    assert addr1 == ip("10.0.3.4")
    assert space.num_free_addresses() == 19 and space.num_owned_addresses() == 1
    addr2 = space.allocate(nr(start, size))
    assert addr2 == ip("10.0.3.5")
    assert space.num_free_addresses() == 18 and space.num_owned_addresses() == 2
    assert space.num_free_addresses_in_range(Range(ip("10.0.3.4"), ip("10.0.3.19"))) == 13
    assert space.num_free_addresses_in_range(Range(ip("10.0.3.4"), ip("10.0.9.19"))) == 18
    space.free(addr2)
    with pytest.raises(SpaceError):
        space.free(addr2)  # double free
    with pytest.raises(SpaceError):
        space.free(ip("10.0.3.19"))  # not allocated
    with pytest.raises(SpaceError):
        space.free(ip("10.0.9.19"))  # out of range


def test_allocate_within_a_subrange() -> None:
    space = make_space(ip("10.0.0.0"), 256)
    assert space.allocate(Range(ip("10.0.0.128"), ip("10.0.0.130"))) == ip("10.0.0.128")
    assert space.allocate(Range(ip("10.0.0.128"), ip("10.0.0.130"))) == ip("10.0.0.129")
    assert space.allocate(Range(ip("10.0.0.128"), ip("10.0.0.130"))) is None
    assert space.allocate(Range(ip("10.0.0.127"), ip("10.0.0.127"))) is None  # empty range
    assert space.allocate(Range(ip("10.0.1.0"), ip("10.0.2.0"))) is None  # not ours
    assert space.is_allocated(ip("10.0.0.129")) and space.is_free(ip("10.0.0.130"))


def test_space_free() -> None:
    base = ip("10.0.3.16")
    size = 16
    entire = nr(base, size)
    space = make_space(base, size)
    for _ in range(size):
        assert space.allocate(entire) is not None
    assert space.allocate(entire) is None
    assert space.donate(entire) is None
    space.free(ip("10.0.3.23"))
    assert space.donate(entire) == nr(ip("10.0.3.23"), 1)
    assert space.num_free_addresses() == 0
    for last in ("10.0.3.31", "10.0.3.30", "10.0.3.29"):
        space.free(ip(last))
    assert space.num_free_addresses() == 3
    for mid in ("10.0.3.24", "10.0.3.22", "10.0.3.21"):
        space.free(ip(mid))
    assert space.num_free_addresses() == 6
    # biggest CIDR block is 10.0.3.30/31; more than half of 6 free? no: 2 <= 3, all of it
    assert space.donate(entire) == nr(ip("10.0.3.30"), 2)
    assert space.owned_ranges() == [
        Range(ip("10.0.3.16"), ip("10.0.3.23")),
        Range(ip("10.0.3.24"), ip("10.0.3.30")),
    ]


def test_donate_simple() -> None:
    start, size = ip("10.0.1.0"), 64
    space = make_space(start, size)
    r = space.donate(nr(start, size))
    assert r is not None and r.start == ip("10.0.1.32") and r.size() == size // 2
    given = r.size()
    assert space.num_free_addresses() == size // 2
    for _ in range(1000):
        r = space.donate(nr(start, size))
        if r is None:
            break
        given += r.size()
    assert space.num_free_addresses() == 0
    assert given == size


def test_donate_hard() -> None:
    start, size = ip("10.0.1.0"), 48
    space = make_space(start, size)
    for _ in range(size):
        assert space.allocate(nr(start, size)) is not None
    assert space.num_free_addresses() == 0
    for i in range(size - 1):
        space.free(start + i)
    assert space.donate(nr(start, size)) == nr(ip("10.0.1.16"), 16)
    assert space.num_free_addresses() == 31
    assert space.allocated_runs() == [Range(ip("10.0.1.47"), ip("10.0.1.48"))]
    assert space.free_runs() == [
        Range(ip("10.0.1.0"), ip("10.0.1.16")),
        Range(ip("10.0.1.32"), ip("10.0.1.47")),
    ]


def test_update_ranges_adds_only_new_space() -> None:
    space = make_space(ip("10.0.0.0"), 16)
    space.claim(ip("10.0.0.3"))
    space.update_ranges([Range(ip("10.0.0.0"), ip("10.0.0.32"))])
    assert space.is_allocated(ip("10.0.0.3"))
    assert space.num_free_addresses() == 31
    assert space.owned_ranges() == [Range(ip("10.0.0.0"), ip("10.0.0.32"))]
    space.add_ranges([Range(ip("10.0.1.0"), ip("10.0.1.4"))])
    assert space.num_free_addresses() == 35


def test_has_allocations() -> None:
    space = make_space(ip("10.0.0.0"), 16)
    whole = Range(ip("10.0.0.0"), ip("10.0.0.16"))
    assert not space.has_allocations([whole])
    assert space.has_allocations([Range(ip("10.0.0.0"), ip("10.0.0.17"))])  # not all ours
    space.claim(ip("10.0.0.9"))
    assert space.has_allocations([whole])
    assert not space.has_allocations([Range(ip("10.0.0.0"), ip("10.0.0.9"))])
    assert not space.has_allocations([])


def test_text_and_clear() -> None:
    space = Space()
    assert str(space) == "No address ranges owned"
    space.add(ip("10.0.0.0"), 4)
    space.claim(ip("10.0.0.0"))
    assert str(space) == "owned: 10.0.0.0+1 free: 10.0.0.1+3 "
    space.clear()
    assert space.num_free_addresses() == 0 and space.owned_ranges() == []


def test_big_range_is_cheap() -> None:
    """A /12 (2^20 addresses) is held as a handful of boundaries, not per address."""
    space = make_space(ip("10.32.0.0"), 1 << 20)
    universe = nr(ip("10.32.0.0"), 1 << 20)
    got = [space.allocate(universe) for _ in range(5000)]
    assert got == [ip("10.32.0.0") + i for i in range(5000)]
    assert len(space.allocated_runs()) == 1 and len(space.free_runs()) == 1
    space.free(ip("10.32.0.7"))
    assert space.allocate(universe) == ip("10.32.0.7")
