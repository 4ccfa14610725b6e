"""IPAM over HTTP on real `weaver` processes on loopback (issue 6).

Three routers with ``--ipalloc-range`` and consensus allocate distinct addresses, answer
lookups, free them, agree on the ring, and one of them keeps its name, ring and
addresses across a restart with the same state directory. A lone router whose quorum
cannot be reached blocks a POST /ip until the client disconnects, which cancels it.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.routers import RouterProc, start_router, wait_for

RANGE = "10.32.0.0/12"
IPAM = ["--ipalloc-range", RANGE]
CONSENSUS_TIMEOUT = 30.0


def ipam_section(router: RouterProc) -> dict[str, Any]:
    section: dict[str, Any] = router.report()["IPAM"]
    return section


def ring(router: RouterProc) -> list[tuple[str, str, int]]:
    entries = ipam_section(router)["Entries"] or []
    return [(e["Token"], e["Peer"], e["Size"]) for e in entries]


def allocate_everywhere(routers: list[RouterProc], ident: str) -> list[str]:
    """POST /ip/<ident> on every router at once (each blocks until consensus)."""
    answers: list[tuple[int, str] | None] = [None] * len(routers)

    def post(i: int) -> None:
        answers[i] = routers[i].http("POST", f"/ip/{ident}", timeout=CONSENSUS_TIMEOUT)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(routers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CONSENSUS_TIMEOUT + 5)
    assert all(a is not None and a[0] == 200 for a in answers), answers
    return [a[1] for a in answers if a is not None]


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[RouterProc]]]:
    workdir = tmp_path_factory.mktemp("ipam")
    extra = [*IPAM, "--ipalloc-init", "consensus=3"]
    routers: list[RouterProc] = []
    try:
        routers.append(start_router(workdir, 1, extra=extra))
        for index in (2, 3):  # every earlier router as a target: loopback ports defeat discovery
            routers.append(start_router(workdir, index, [r.address for r in routers], extra))
        for router in routers:
            others = {r.name for r in routers if r is not router}
            wait_for(lambda r=router, o=others: o <= set(r.established()), 20.0, "full mesh")
        yield workdir, routers
    finally:
        for router in routers:
            router.stop()


def test_allocations_are_distinct_and_the_ring_agrees(trio: tuple[Path, list[RouterProc]]) -> None:
    _, routers = trio
    addresses = allocate_everywhere(routers, "c1")
    assert len(set(addresses)) == 3 and all(a.endswith("/12") for a in addresses)
    for router, address in zip(routers, addresses, strict=True):
        assert router.http("GET", "/ip/c1") == (200, address)
        assert router.http("POST", "/ip/c1") == (200, address)  # idempotent
        assert router.http("GET", "/ring", timeout=10) == (200, "")
        assert ipam_section(router)["Status"] == "ready"
    wait_for(lambda: len({tuple(ring(r)) for r in routers}) == 1, 10.0, "the same ring")
    owners = {peer for _, peer, _ in ring(routers[0])}
    assert owners == {r.name for r in routers}
    assert sum(size for _, _, size in ring(routers[0])) == 1 << 20
    status, body = routers[0].http("GET", "/status/ipam")
    assert status == 200 and body.splitlines()[0].startswith(f"{routers[0].name}(r1)")


def test_free_and_delete(trio: tuple[Path, list[RouterProc]]) -> None:
    _, routers = trio
    router = routers[1]
    first = router.http("POST", "/ip/c2", timeout=CONSENSUS_TIMEOUT)[1]
    second = router.http("POST", f"/ip/c2/{RANGE.replace('/', '/')}", timeout=10)[1]
    assert first == second  # one address per ident and subnet
    address = first.split("/")[0]
    assert router.http("DELETE", f"/ip/c2/{address}") == (204, "")
    assert router.http("GET", "/ip/c2") == (200, "")
    assert router.http("DELETE", f"/ip/c2/{address}") == (
        400,
        f"Unable to free: Free: address {address} not found for c2\n",
    )
    router.http("POST", "/ip/c3", timeout=10)
    assert router.http("DELETE", "/ip/c3") == (204, "")
    assert router.http("DELETE", "/ip/c3") == (400, "Delete: no addresses for c3\n")


def test_a_restart_keeps_name_ring_and_addresses(trio: tuple[Path, list[RouterProc]]) -> None:
    workdir, routers = trio
    old = routers[2]
    allocate_everywhere(routers, "c4")
    address = old.http("GET", "/ip/c4")[1]
    ring_before = ring(old)
    old.stop()
    extra = [*IPAM, "--ipalloc-init", "consensus=3"]
    new = start_router(workdir, 3, [r.address for r in routers[:2]], extra)
    routers[2] = new
    assert new.state_dir == old.state_dir
    assert new.report()["Router"]["Name"] == old.name
    # restored from the store before any peer could tell it: answers at once
    assert new.http("GET", "/ip/c4") == (200, address)
    assert ring(new) == ring_before
    assert new.http("POST", "/ip/c4", timeout=5) == (200, address)
    assert "Deleting persisted data" not in new.log()


def test_a_blocked_allocation_is_cancelled_when_the_client_goes(tmp_path: Path) -> None:
    lone = start_router(tmp_path, 9, extra=[*IPAM, "--ipalloc-init", "consensus=3"])
    try:
        conn = http.client.HTTPConnection(lone.host, lone.http_port, timeout=30)
        conn.request("POST", "/ip/stuck")

        def pending() -> bool:
            section = ipam_section(lone)
            return any(p.startswith("stuck ") for p in section["PendingAllocates"] or [])

        wait_for(pending, 10.0, "the allocation to be pending")
        section = ipam_section(lone)
        assert section["Status"] == "awaiting consensus (quorum: 2, known: 1)"
        assert section["Awaiting"]
        status, text = lone.http("GET", "/status/ipam")
        assert (status, text.splitlines()[0].strip()) == (200, f"Status: {section['Status']}")
        conn.close()  # the client gives up
        wait_for(lambda: not pending(), 10.0, "the allocation to be cancelled")
        assert "cancelled" in lone.log()
    finally:
        lone.stop()
