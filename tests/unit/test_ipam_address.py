"""Addresses, ranges and CIDRs as Weave's net/address (cases from address_test.go)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.ipam.address import (
    CIDR,
    MIN_SUBNET_SIZE,
    Range,
    format_address,
    make_cidr,
    parse_address,
    parse_subnet,
)


def ip(text: str) -> int:
    return parse_address(text)


def test_address_text_round_trip() -> None:
    assert parse_address("10.32.0.1") == 0x0A200001
    assert format_address(0x0A200001) == "10.32.0.1"
    assert format_address(0) == "0.0.0.0" and format_address(0xFFFFFFFF) == "255.255.255.255"


@pytest.mark.parametrize(
    "text", ["", "10.0.0", "10.0.0.256", "10.0.0.01", "a.b.c.d", "::1", "1.2.3.4 "]
)
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape('invalid IP Address: ' + text)}$"):
        parse_address(text)


def test_range_basics() -> None:
    r = Range(ip("10.0.0.0"), ip("10.0.1.0"))
    assert r.size() == 256
    assert str(r) == "10.0.0.0-10.0.0.255"
    assert r.contains(ip("10.0.0.255")) and not r.contains(ip("10.0.1.0"))
    assert r.overlaps(Range(ip("10.0.0.255"), ip("10.0.2.0")))
    assert not r.overlaps(Range(ip("10.0.1.0"), ip("10.0.2.0")))
    assert r.intersect(Range(ip("10.0.0.128"), ip("10.0.2.0"))) == Range(ip("10.0.0.128"), r.end)
    assert r.intersect(Range(ip("10.0.1.0"), ip("10.0.2.0"))) is None
    assert Range(1, 2) < Range(1, 3) < Range(2, 0)


def test_as_cidr_string() -> None:
    assert Range(ip("10.32.0.0"), ip("10.48.0.0")).as_cidr_string() == "10.32.0.0/12"
    assert Range(ip("10.0.0.0"), ip("10.0.0.3")).as_cidr_string() == "10.0.0.0-10.0.0.2"
    assert Range(ip("10.0.0.5"), ip("10.0.0.6")).as_cidr_string() == "10.0.0.5/32"


def test_biggest_cidr_range_examples() -> None:
    def nr(start: int, size: int) -> Range:
        return Range(start, start + size)

    assert nr(0, 1).biggest_cidr_range() == nr(0, 1)
    assert nr(1, 2).biggest_cidr_range() == nr(1, 1)
    assert nr(1, 3).biggest_cidr_range() == nr(2, 2)
    assert nr(0, 0x7FFFFFFF).biggest_cidr_range() == nr(0, 0x40000000)
    assert nr(0xFFFFFFFE, 1).biggest_cidr_range() == nr(0xFFFFFFFE, 1)


@given(st.integers(0, 0xFFFFFFFF), st.integers(1, 0xFFFFFFFF))
def test_biggest_cidr_range_property(start: int, size: int) -> None:
    size = min(size, 0xFFFFFFFF - start) or 1
    r = Range(start, start + size)
    got = r.biggest_cidr_range()
    assert r.contains(got.start) and r.contains(got.end - 1)
    assert got.size() & (got.size() - 1) == 0
    assert got.size() > r.size() // 4
    assert got.start % got.size() == 0


def test_cidrs_cover_a_range() -> None:
    r = Range(ip("10.0.0.1"), ip("10.0.0.9"))
    assert r.cidrs() == [
        CIDR.parse("10.0.0.1/32"),
        CIDR.parse("10.0.0.2/31"),
        CIDR.parse("10.0.0.4/30"),
        CIDR.parse("10.0.0.8/32"),
    ]
    assert Range(0, 1 << 32).cidrs() == [CIDR(0, 0)]


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 5000))
def test_cidrs_property(start: int, size: int) -> None:
    r = Range(start, min(start + size, 1 << 32))
    blocks = r.cidrs()
    pos = r.start
    for block in blocks:
        assert block.is_subnet() and block.addr == pos
        pos = block.end()
    assert pos == r.end


def test_cidr_parse_and_text() -> None:
    c = CIDR.parse("10.32.0.1/12")
    assert (c.addr, c.prefix_len) == (ip("10.32.0.1"), 12)
    assert str(c) == "10.32.0.1/12"
    assert not c.is_subnet()
    net = CIDR.parse("10.0.0.0/24")
    assert net.start() == ip("10.0.0.0") and net.end() == ip("10.0.1.0")
    assert net.range() == Range(ip("10.0.0.0"), ip("10.0.1.0"))
    assert net.host_range() == Range(ip("10.0.0.1"), ip("10.0.0.255"))
    assert net.size() == 256
    assert make_cidr(net, ip("10.0.0.7")) == CIDR(ip("10.0.0.7"), 24)


@pytest.mark.parametrize(
    "text", ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "10.0.0.0/x", "/8", "10.0.0.0/"]
)
def test_cidr_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape('invalid CIDR address: ' + text)}$"):
        CIDR.parse(text)


def test_cidr_parse_rejects_ipv6() -> None:
    with pytest.raises(ValueError, match=r"^invalid Non-IPv4 address not supported: ::1/64$"):
        CIDR.parse("::1/64")


def test_cidr_validates_fields() -> None:
    with pytest.raises(ValueError):
        CIDR(1 << 32, 8)
    with pytest.raises(ValueError):
        CIDR(0, 33)


def test_parse_subnet() -> None:
    assert parse_subnet("10.32.0.0/12") == CIDR(ip("10.32.0.0"), 12)
    with pytest.raises(ValueError) as info:
        parse_subnet("10.32.0.1/12")
    assert str(info.value) == (
        "invalid subnet - bits after network prefix are not all zero: 10.32.0.1/12"
    )
    with pytest.raises(ValueError) as info:
        parse_subnet("10.32.0.1/31")  # both wrong: Go reports the size
    assert str(info.value) == (
        f"invalid subnet - smaller than minimum size {MIN_SUBNET_SIZE}: 10.32.0.1/31"
    )
    assert parse_subnet("10.32.0.0/30").size() == 4
