"""A container behind a Go weaver and one behind ours talk over the sleeve: ping, PMTU, and
10 MB TCP transfers both ways, plain and encrypted."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.interop.helpers import (
    go_sleeve_mtu,
    our_connections,
    our_sleeve_mtu,
    wait_mesh,
)
from weavenet.harness import Container, wait_until
from weavenet.harness.containers import attached_container, wait_reaches
from weavenet.harness.goweaver import GoWeaver, InteropCluster, attach_go_container
from weavenet.harness.transfer import tcp_transfer

TEN_MB = 10 * 1024 * 1024
# Sleeve PMTU over a 1500-byte underlay, as the Go weaver computes it: 1500 - IP/UDP (28) -
# sleeve frame headers (34), and 24 bytes less for the NaCl overhead when encrypted.
EXPECTED_MTU = {None: 1438, "s3cret-interop": 1414}


@pytest.mark.parametrize("password", [None, "s3cret-interop"], ids=["plain", "encrypted"])
def test_go_and_our_containers_over_the_sleeve(
    interop: Callable[..., InteropCluster], go: Callable[..., GoWeaver], password: str | None
) -> None:
    c = interop(2)
    h_go, h_ours = c.hosts
    gow = go(c, 0, password=password)
    # A Go weaver without Open vSwitch runs a sleeve-only bridge (MTU 65535) and sends up to
    # the sleeve's PMTU; our fastdp bridge has MTU 1376. This test is about the sleeve's
    # PMTU between the two, so our side runs the sleeve alone, as the Go side does (README:
    # a mixed network wants one MTU everywhere).
    h_ours.launch("--no-fastdp", *(["--password", password] if password else []), h_go.ip)
    wait_mesh([gow, h_ours], peers=2, est=[1, 1])
    a = attach_go_container(h_go, "a", "10.2.1.1/24")
    b = attached_container(h_ours, "b", "10.2.1.2/24")

    wait_reaches(a, "10.2.1.2", timeout=30)
    wait_reaches(b, "10.2.1.1", timeout=30)
    mtu = EXPECTED_MTU[password]
    assert wait_until(lambda: our_sleeve_mtu(h_ours), 30, message="our sleeve PMTU") == mtu
    assert wait_until(lambda: go_sleeve_mtu(gow), 30, message="Go sleeve PMTU") == mtu
    assert ("encrypted" in our_connections(h_ours)) is (password is not None)

    # PMTU: the largest unfragmented packet crosses both ways; one byte more and the sending
    # side's router answers "fragmentation needed", which the container's kernel caches
    assert a.ping("10.2.1.2", size=mtu - 28, timeout=3.0, count=2)
    assert b.ping("10.2.1.1", size=mtu - 28, timeout=3.0, count=2)
    for src, dst in ((a, "10.2.1.2"), (b, "10.2.1.1")):
        src.ping(dst, size=mtu - 27, timeout=1.0)
        assert wait_until(lambda s=src, d=dst: _cached_pmtu(s, d), 10, message="PMTU") == mtu
        assert src.ping(dst, size=3000, timeout=3.0, count=2)  # now fragmented at the source
    tcp_transfer(a, b, "10.2.1.2", TEN_MB)
    tcp_transfer(b, a, "10.2.1.1", TEN_MB)


def _cached_pmtu(container: Container, dst: str) -> int | None:
    """The path MTU the container's kernel learnt for `dst` from an ICMP "frag needed"."""
    m = re.search(r"\bmtu (\d+)", container.run(["ip", "route", "get", dst]).stdout)
    return int(m.group(1)) if m else None
