"""IPAM between a Go weaver and ours (issue 6, acceptance 8): one ring by consensus, distinct
addresses on both sides, identical rings; a ring seeded by different peers is refused with
Go's error text and neither router crashes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.interop.helpers import our_api, wait_mesh
from weavenet.harness import Container, Host, wait_until
from weavenet.harness.containers import wait_reaches
from weavenet.harness.goweaver import GoWeaver, InteropCluster, attach_go_container

RANGE = "10.32.0.0/12"
GO_NAME = "a2:00:00:00:00:01"
OUR_NAME = "12:00:00:00:00:02"


def _ipam_args(init: str) -> list[str]:
    return [f"--ipalloc-range={RANGE}", f"--ipalloc-init={init}"]


def _ethwe_address(container: Container) -> str:
    """The IPv4 CIDR on the container's ethwe (what `weave attach` without an address gave)."""
    info = json.loads(container.run(["ip", "-j", "-4", "addr", "show", "dev", "ethwe"]).stdout)
    (addr,) = info[0]["addr_info"]
    return f"{addr['local']}/{addr['prefixlen']}"


def _entries(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list((report.get("IPAM") or {}).get("Entries") or [])


def _rings_agree(go: GoWeaver, ours: Host) -> list[dict[str, Any]]:
    """Poll until both /report IPAM Entries are identical and non-empty; return them.

    An owner's entry version moves when its free count changes after an allocation, and
    (in Go as in ours) that reaches the other side with the periodic gossip, every 30 s."""
    seen: list[Any] = []

    def agree() -> bool:
        seen[:] = [_entries(go.report()), _entries(our_api(ours).report())]
        return bool(seen[0]) and seen[0] == seen[1]

    wait_until(agree, 75, interval=0.5, message="IPAM rings agree", describe=lambda: seen)
    return list(seen[0])


def test_consensus_ring_shared_by_go_and_ours(
    interop: Callable[..., InteropCluster], go: Callable[..., GoWeaver]
) -> None:
    c = interop(2)
    h_go, h_ours = c.hosts
    gow = go(c, 0, name=GO_NAME, args=_ipam_args("consensus=2"))
    h_ours.launch(*_ipam_args("consensus=2"), h_go.ip)
    wait_mesh([gow, h_ours], peers=2, est=[1, 1])

    go_cidr = gow.api.allocate("go-container-a", timeout=60)  # blocks until consensus
    a = attach_go_container(h_go, "a", go_cidr)
    b = h_ours.add_container("b")
    h_ours.weave("attach", f"netns:{b.netns}", timeout=60)
    our_cidr = _ethwe_address(b)

    assert go_cidr != our_cidr
    for cidr in (go_cidr, our_cidr):
        assert cidr.endswith("/12") and cidr.startswith("10.")
    wait_reaches(a, our_cidr.split("/")[0], timeout=30)
    wait_reaches(b, go_cidr.split("/")[0], timeout=30)

    gow.api.prime()  # GET /ring answers on both once the ring exists ...
    our_api(h_ours).prime()
    entries = _rings_agree(gow, h_ours)  # ... and the rings themselves are identical
    owners = {e["Peer"] for e in entries}
    assert owners == {GO_NAME, our_api(h_ours).report()["Router"]["Name"]}, entries
    assert sum(int(e["Size"]) for e in entries) == 1 << 20
    assert gow.api.owned("go-container-a") == go_cidr


SEED_ERROR = (
    r"IP allocation was seeded by different peers \(received: \[{theirs}(\(\w+\))?\], "
    r"ours: \[{ours}(\(\w+\))?\]\)"
)


def test_ring_seeded_by_different_peers_is_refused(
    interop: Callable[..., InteropCluster], go: Callable[..., GoWeaver]
) -> None:
    c = interop(2)
    h_go, h_ours = c.hosts
    gow = go(c, 0, name=GO_NAME, args=_ipam_args(f"seed={GO_NAME}"))
    h_ours.launch("--name", OUR_NAME, *_ipam_args(f"seed={OUR_NAME}"), h_go.ip)

    go_refuses = re.compile(SEED_ERROR.format(theirs=OUR_NAME, ours=GO_NAME))
    we_refuse = re.compile(SEED_ERROR.format(theirs=GO_NAME, ours=OUR_NAME))
    wait_until(lambda: go_refuses.search(gow.log()), 30, message="Go refuses our ring")
    wait_until(lambda: we_refuse.search(h_ours.log()), 30, message="we refuse Go's ring")

    # neither side crashed, and each still has only its own seeded ring
    assert gow.running() and h_ours.router_pid() is not None
    assert {e["Peer"] for e in _entries(gow.report())} == {GO_NAME}
    assert {e["Peer"] for e in _entries(our_api(h_ours).report())} == {OUR_NAME}
    assert gow.api.allocate("go-container-a", timeout=30).startswith("10.")
