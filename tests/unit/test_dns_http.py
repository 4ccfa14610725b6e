"""The WeaveDNS HTTP routes (surface §2.4, Go nameserver/http.go) over a real DnsShell
whose router is a stub recording the gossip the nameserver sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from weavenet.api.dns_http import add_dns_routes, parse_ip
from weavenet.core.dns.codec import DnsGossipData
from weavenet.core.mesh.gossip import Gossiper
from weavenet.io.dns_shell import DnsSettings, DnsShell

US = 0x0A0000000001
IP1, IP2 = "10.32.0.1", "10.32.0.2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Handle:
    def __init__(self) -> None:
        self.sent: list[DnsGossipData] = []

    def gossip_unicast(self, dst: int, msg: bytes, now: float) -> bool:
        return True

    def gossip_broadcast(self, update: Any, now: float) -> None:
        self.sent.append(update)

    def gossip_neighbour_subset(self, update: Any, now: float) -> None:
        self.sent.append(update)


class StubRouter:
    def __init__(self) -> None:
        self.handle = Handle()
        self.channels: dict[str, Gossiper] = {}
        self.effect_runs = 0

    @property
    def name(self) -> int:
        return US

    def new_gossip(self, channel: str, gossiper: Gossiper) -> Handle:
        self.channels[channel] = gossiper
        return self.handle

    def known_peers(self) -> dict[int, str]:
        return {US: "us"}

    def on_peer_gone(self, callback: Callable[[int, float], None]) -> None:
        pass

    def run_effects(self) -> None:
        self.effect_runs += 1


Case = Callable[[TestClient[Any, Any], DnsShell, StubRouter], Awaitable[None]]


def run(case: Case, running: Callable[[str], bool | None] = lambda _c: None) -> None:
    async def main() -> None:
        router = StubRouter()
        shell = DnsShell(router, DnsSettings(), router.run_effects, lambda: 0.0, running)
        app = web.Application()
        add_dns_routes(app, shell)
        async with TestClient(TestServer(app)) as client:
            await case(client, shell, router)
        await shell.stop()

    asyncio.run(main())


def live(shell: DnsShell) -> list[tuple[str, str, str]]:
    return [(e.hostname, e.container_id, str(e.addr)) for e in shell.entries() if e.live]


def test_domain_is_the_bare_text() -> None:
    async def case(client: TestClient[Any, Any], shell: DnsShell, router: StubRouter) -> None:
        resp = await client.get("/domain")
        assert resp.status == 200
        assert await resp.text() == "weave.local."

    run(case)


def test_put_registers_gossips_and_runs_the_router_effects() -> None:
    async def case(client: TestClient[Any, Any], shell: DnsShell, router: StubRouter) -> None:
        resp = await client.put(f"/name/c1/{IP1}", data="fqdn=web.weave.local", headers=FORM)
        assert resp.status == 204
        assert shell.nameserver.lookup_name("web.weave.local") == [parse_ip(IP1)]
        assert [e.hostname for d in router.handle.sent for e in d.entries] == ["web.weave.local."]
        assert router.effect_runs >= 1

    run(case)


def test_put_with_fqdn_in_the_query_and_outside_the_domain() -> None:
    async def case(client: TestClient[Any, Any], shell: DnsShell, router: StubRouter) -> None:
        assert (await client.put(f"/name/c1/{IP1}?fqdn=db.weave.local")).status == 204
        assert (await client.put(f"/name/c2/{IP2}?fqdn=db.example.com")).status == 204
        assert [h for h, _, _ in live(shell)] == ["db.weave.local."]

    run(case)


def test_put_with_a_bad_ip_is_400_with_gos_text() -> None:
    async def case(client: TestClient[Any, Any], shell: DnsShell, router: StubRouter) -> None:
        resp = await client.put("/name/c1/10.32.0.300?fqdn=x.weave.local")
        assert resp.status == 400
        assert await resp.text() == "invalid IP Address: 10.32.0.300\n"
        assert shell.entries() == []

    run(case)


def test_check_alive_removes_the_entry_of_a_stopped_container() -> None:
    async def case(client: TestClient[Any, Any], shell: DnsShell, router: StubRouter) -> None:
        query = "fqdn=web.weave.local&check-alive=true"
        assert (await client.put(f"/name/dead/{IP1}?{query}")).status == 204
        assert (await client.put(f"/name/alive/{IP2}?{query}")).status == 204
        assert [c for _, c, _ in live(shell)] == ["alive"]

    run(case, running=lambda c: c == "alive")


def test_delete_by_container_ip_by_container_and_by_fqdn() -> None:
    async def case(client: TestClient[Any, Any], shell: DnsShell, router: StubRouter) -> None:
        shell.add_entry("a.weave.local", "c1", parse_ip(IP1))
        shell.add_entry("b.weave.local", "c1", parse_ip(IP2))
        shell.add_entry("a.weave.local", "c2", parse_ip(IP2))
        shell.add_entry("z.weave.local", "c3", parse_ip(IP2))
        assert (await client.delete(f"/name/c1/{IP2}")).status == 204
        assert sorted(c + h[0] for h, c, _ in live(shell)) == ["c1a", "c2a", "c3z"]
        assert (await client.delete("/name/c2")).status == 204
        assert sorted(c + h[0] for h, c, _ in live(shell)) == ["c1a", "c3z"]
        assert (await client.delete("/name?fqdn=a.weave.local")).status == 204
        assert sorted(c + h[0] for h, c, _ in live(shell)) == ["c3z"]
        assert (await client.delete("/name")).status == 204
        assert live(shell) == []

    run(case)


def test_delete_with_a_bad_ip_is_400_and_removes_nothing() -> None:
    async def case(client: TestClient[Any, Any], shell: DnsShell, router: StubRouter) -> None:
        shell.add_entry("a.weave.local", "c1", parse_ip(IP1))
        resp = await client.delete("/name/c1/nonsense")
        assert resp.status == 400
        assert await resp.text() == "invalid IP Address: nonsense\n"
        assert len(live(shell)) == 1

    run(case)


def test_get_name_needs_accept_json_and_gives_gos_entries() -> None:
    async def case(client: TestClient[Any, Any], shell: DnsShell, router: StubRouter) -> None:
        assert (await client.get("/name")).status == 404
        empty = await client.get("/name", headers={"Accept": "application/json"})
        assert await empty.text() == "null\n"
        shell.add_entry("a.weave.local", "c1", parse_ip(IP1))
        shell.delete_entries("c1")
        resp = await client.get("/name", headers={"Accept": "application/json"})
        (entry,) = json.loads(await resp.text())
        assert list(entry) == ["ContainerID", "Origin", "Addr", "Hostname", "Version", "Tombstone"]
        assert (entry["ContainerID"], entry["Origin"], entry["Addr"]) == ("c1", US, 0x0A200001)
        assert entry["Version"] == 1 and entry["Tombstone"] > 0

    run(case)


def test_dns_address_is_404_until_a_listener_then_the_one_of_the_clients_subnet() -> None:
    async def case(client: TestClient[Any, Any], shell: DnsShell, router: StubRouter) -> None:
        resp = await client.get("/dns-address")
        assert resp.status == 404 and "attach a container first" in await resp.text()
        _, port1 = await shell.listen("127.0.0.1", 0, "127.0.0.0/24")
        _, port2 = await shell.listen("127.0.1.1", 0, "127.0.1.0/24")
        assert await (await client.get("/dns-address")).text() == "127.0.0.1"
        assert await (await client.get("/dns-address-port")).text() == f"127.0.0.1:{port1}"
        near = await client.get("/dns-address-port?ip=127.0.1.77")
        assert await near.text() == f"127.0.1.1:{port2}"
        assert await (await client.get("/dns-address?ip=127.0.1.77")).text() == "127.0.1.1"

    run(case)


def test_parse_ip_takes_v4_and_v4_mapped_only() -> None:
    assert parse_ip("10.32.0.1") == 0x0A200001
    assert parse_ip("::ffff:10.32.0.1") == 0x0A200001
    for bad in ("", "fe80::1", "10.32.0", "web"):
        try:
            parse_ip(bad)
        except ValueError as exc:
            assert str(exc) == f"invalid IP Address: {bad}"
        else:
            raise AssertionError(f"{bad!r} parsed")
