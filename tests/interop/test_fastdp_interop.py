"""Our fastdp router with a Go weaver 2.8.1: Go's `fastdp` is not ours (and needs Open
vSwitch), so the two share the sleeve, plain and encrypted, and carry traffic both ways."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.interop.helpers import our_connections, wait_mesh
from weavenet.harness.containers import attached_container, wait_reaches
from weavenet.harness.goweaver import GoWeaver, InteropCluster, attach_go_container


@pytest.mark.parametrize("password", [None, "s3cret"], ids=["plain", "encrypted"])
def test_a_go_weaver_gets_the_sleeve_from_our_fastdp_router(
    interop: Callable[..., InteropCluster], go: Callable[..., GoWeaver], password: str | None
) -> None:
    c = interop(2)
    h_go, h_ours = c.hosts
    gow = go(c, 0, password=password)
    h_ours.launch(*(["--password", password] if password else []), h_go.ip)  # fastdp on
    wait_mesh([gow, h_ours], peers=2, est=[1, 1])
    a = attached_container(h_ours, "a", "10.2.1.1/24")
    b = attach_go_container(h_go, "b", "10.2.1.2/24")
    wait_reaches(a, "10.2.1.2", timeout=30)
    wait_reaches(b, "10.2.1.1", timeout=15)
    status = our_connections(h_ours)
    assert "sleeve" in status and "fastdp" not in status, status
    assert ("encrypted" in status) == bool(password), status
