"""The IPAM HTTP API end to end in one process: aiohttp test client -> routes -> IPAM
shell -> the real Allocator on a real Router and MeshShell, persisted in a real store."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from weavenet.api.http import make_app
from weavenet.api.status_text import render_status
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import Consensus, InitMode, Seed
from weavenet.core.mesh.router import Router, RouterConfig
from weavenet.io.ipam_config import IpamSettings
from weavenet.io.ipam_shell import IpamShell, start_ipam
from weavenet.io.mesh_tcp import MeshShell
from weavenet.io.store import Store

NAME = 0x0200000000A1
UNIVERSE = CIDR.parse("10.32.0.0/12")

Client = TestClient[Any, Any]
Scenario = Callable[[Client, IpamShell, MeshShell], Awaitable[None]]


SEEDED = Seed((NAME,))


def run(tmp_path: Path, scenario: Scenario, init: InitMode = SEEDED) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        router = Router(RouterConfig(name=NAME, nickname="e2e"), random.Random(7), loop.time())
        mesh = MeshShell(router, "127.0.0.1", 0, lambda targets: None)
        store = Store(tmp_path)
        ipam = await start_ipam(IpamSettings(UNIVERSE, UNIVERSE, init), mesh, store)
        assert ipam is not None
        try:
            async with TestClient(TestServer(make_app(mesh, ipam))) as client:
                await scenario(client, ipam, mesh)
        finally:
            ipam.close()
            await mesh.stop()
            store.close()

    asyncio.run(main())


async def call(client: Client, method: str, path: str, **kw: Any) -> tuple[int, str]:
    resp = await client.request(method, path, **kw)
    return resp.status, await resp.text()


def test_allocate_lookup_free_delete(tmp_path: Path) -> None:
    async def scenario(client: Client, ipam: IpamShell, mesh: MeshShell) -> None:
        assert await call(client, "POST", "/ip/c1") == (200, "10.32.0.1/12")
        assert await call(client, "POST", "/ip/c2") == (200, "10.32.0.2/12")  # lowest free
        assert await call(client, "POST", "/ip/c1") == (200, "10.32.0.1/12")
        assert await call(client, "POST", "/ip/c1/10.32.1.0/24") == (200, "10.32.1.1/24")
        # the /24 lies inside the default subnet, so both are in it (as Go's Lookup)
        assert await call(client, "GET", "/ip/c1") == (200, "10.32.0.1/12 10.32.1.1/24")
        assert await call(client, "GET", "/ip/c1/10.32.1.0/24") == (200, "10.32.1.1/24")
        owned = json.loads((await call(client, "GET", "/ip"))[1])["owned"]
        assert {o["containerid"]: o["addrs"] for o in owned} == {
            "c1": ["10.32.0.1/12", "10.32.1.1/24"],
            "c2": ["10.32.0.2/12"],
        }
        assert await call(client, "DELETE", "/ip/c2/10.32.0.2") == (204, "")
        assert await call(client, "POST", "/ip/c3") == (200, "10.32.0.2/12")  # reused
        assert await call(client, "DELETE", "/ip/c1") == (204, "")
        assert await call(client, "GET", "/ip/c1") == (200, "")
        assert await call(client, "DELETE", "/ip/c1") == (400, "Delete: no addresses for c1\n")
        # every change was committed before it was answered
        _, persisted = ipam.store.load_ipam()
        assert persisted == {"c3": (False, [CIDR.parse("10.32.0.2/12")])}

    run(tmp_path, scenario)


def test_errors_have_go_texts(tmp_path: Path) -> None:
    async def scenario(client: Client, ipam: IpamShell, mesh: MeshShell) -> None:
        assert await call(client, "POST", "/ip/c1/192.168.0.0/24") == (
            400,
            "range 192.168.0.0/24 out of bounds: 10.32.0.0/12\n",
        )
        assert await call(client, "POST", "/ip/c1") == (200, "10.32.0.1/12")
        status, body = await call(client, "PUT", "/ip/c2/10.32.0.1/12")
        assert status == 400 and body.startswith("Unable to claim: address 10.32.0.1")
        # outside the range: simply recorded
        assert await call(client, "PUT", "/ip/c2/192.168.7.7/24") == (204, "")
        assert await call(client, "GET", "/ip/c2/192.168.7.0/24") == (200, "192.168.7.7/24")
        assert await call(client, "GET", "/ring") == (200, "")
        assert await call(client, "DELETE", "/peer/nobody") == (
            200,
            "0 IPs taken over from nobody\n",
        )

    run(tmp_path, scenario)


def test_report_status_and_metrics(tmp_path: Path) -> None:
    async def scenario(client: Client, ipam: IpamShell, mesh: MeshShell) -> None:
        await call(client, "POST", "/ip/c1")
        report = json.loads(
            (await call(client, "GET", "/report", headers={"Accept": "application/json"}))[1]
        )
        assert list(report)[:5] == ["Ready", "Version", "VersionCheck", "Router", "IPAM"]
        section = report["IPAM"]
        assert section["Status"] == "ready" and section["Awaiting"] == ""
        assert (section["Range"], section["RangeNumIPs"], section["ActiveIPs"]) == (
            "10.32.0.0/12",
            1 << 20,
            1,
        )
        assert [e["Peer"] for e in section["Entries"]] == ["02:00:00:00:00:a1"]
        text = (await call(client, "GET", "/status"))[1]
        assert (
            "        Service: ipam\n         Status: ready\n          Range: 10.32.0.0/12\n" in text
        )
        ipam_view = (await call(client, "GET", "/status/ipam"))[1]
        assert ipam_view.startswith("02:00:00:00:00:a1(e2e)") and "(1 active)" in ipam_view
        metrics = (await call(client, "GET", "/metrics"))[1]
        assert 'weave_ips{state="local-used"} 1\n' in metrics
        assert "weave_max_ips 1.048576e+06\n" in metrics  # as Go prints it

    run(tmp_path, scenario)


def test_disconnect_cancels_an_allocation_waiting_for_consensus(tmp_path: Path) -> None:
    async def scenario(client: Client, ipam: IpamShell, mesh: MeshShell) -> None:
        def pending() -> list[str]:
            return list(mesh.report(routes=False)["IPAM"]["PendingAllocates"] or [])

        request = asyncio.ensure_future(client.post("/ip/stuck"))
        await wait_until(lambda: bool(pending()))
        section = mesh.report(routes=False)["IPAM"]
        assert section["Status"] == "awaiting consensus (quorum: 2, known: 1)"
        assert section["Paxos"] == {"Elector": True, "KnownNodes": 1, "Quorum": 2}
        text = (await call(client, "GET", "/status/ipam"))[1]
        assert text.startswith("         Status: awaiting consensus (quorum: 2, known: 1)\n")
        request.cancel()  # the client goes away: its connection is closed
        await wait_until(lambda: not pending())

    run(tmp_path, scenario, init=Consensus(2))


def test_status_prints_what_the_full_report_renders_to(tmp_path: Path) -> None:
    """GET /status comes from the status report (IPAM's status hook): it must print what
    rendering /report did, awaiting consensus with a target not connected, then ready."""

    async def scenario(client: Client, ipam: IpamShell, mesh: MeshShell) -> None:
        async def same() -> str:
            status, text = await call(client, "GET", "/status")
            assert status == 200 and text == render_status(mesh.report(routes=False))
            return text

        assert mesh.connect(["127.0.0.9:6783"], False) == []  # never dialled: not started
        request = asyncio.ensure_future(client.post("/ip/c1"))
        await wait_until(lambda: bool(mesh.report(routes=False)["IPAM"]["PendingAllocates"]))
        text = await same()
        assert "awaiting consensus" in text and "127.0.0.9:6783 (connecting)" in text
        assert "    Connections: 1 (1 connecting)\n" in text
        request.cancel()
        await wait_until(lambda: not mesh.report(routes=False)["IPAM"]["PendingAllocates"])
        await same()

    run(tmp_path, scenario, init=Consensus(2))


def test_status_when_ready_prints_what_the_full_report_renders_to(tmp_path: Path) -> None:
    async def scenario(client: Client, ipam: IpamShell, mesh: MeshShell) -> None:
        assert await call(client, "POST", "/ip/c1") == (200, "10.32.0.1/12")
        status, text = await call(client, "GET", "/status")
        assert status == 200 and text == render_status(mesh.report(routes=False))
        assert "         Status: ready\n" in text

    run(tmp_path, scenario)


async def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_cancel_all_answers_waiting_allocations(tmp_path: Path) -> None:
    async def scenario(client: Client, ipam: IpamShell, mesh: MeshShell) -> None:
        request = asyncio.ensure_future(call(client, "POST", "/ip/stuck"))
        await wait_until(lambda: bool(mesh.report(routes=False)["IPAM"]["PendingAllocates"]))
        ipam.cancel_all()  # what the HTTP app does when it shuts down
        assert await asyncio.wait_for(request, 5) == (200, "cancelled")
        assert not mesh.report(routes=False)["IPAM"]["PendingAllocates"]

    run(tmp_path, scenario, init=Consensus(2))
