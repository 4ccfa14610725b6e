"""WeaveDNS on real router cores over loopback TCP: start_dns on two routers, a name added
on one resolves through the other's DNS server (127.0.0.x, random ports); removal and a
departed peer follow. DnsListeners picks one listen address per subnet (IPAM and bridge
are fakes here; tests/netns/test_dns_listen.py uses the kernel)."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from tests.integration.routers import free_port
from weavenet.core.errors import ConfigError
from weavenet.core.ipam.address import CIDR
from weavenet.core.mesh.config import RouterConfig
from weavenet.core.mesh.router import Router
from weavenet.io.dns_listeners import DNS_IDENT, DnsListenError, DnsListeners
from weavenet.io.dns_shell import DnsSettings, DnsShell, parse_listen_address, start_dns
from weavenet.io.mesh_tcp import MeshShell

WEB = "web.weave.local."
DEADLINE = 10.0


@dataclass
class Node:
    mesh: MeshShell
    dns: DnsShell
    addr: tuple[str, int]


async def make_node(index: int, host: str, resolv: str) -> Node:
    loop = asyncio.get_running_loop()
    port = free_port(host)
    config = RouterConfig(name=0x0A0000000000 + index, nickname=f"n{index}", port=port)
    router = Router(config, random.Random(index), loop.time())
    mesh = MeshShell(router, host, port, lambda _targets: None)
    await mesh.start()
    settings = DnsSettings(resolv_conf=resolv, listen_address=f"{host}:0")
    dns_shell = await start_dns(router, settings, mesh.run_effects, mesh.wall_offset)
    return Node(mesh, dns_shell, dns_shell.listen_addresses()[0])


async def lookup(addr: tuple[str, int], name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(query, addr[0], port=addr[1], timeout=1.0)


async def poll(check: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {DEADLINE}s waiting for {what}")
        await asyncio.sleep(0.05)


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(r.address for rrset in reply.answer for r in rrset)


def two_routers(body: Callable[[Node, Node], Awaitable[None]], resolv: str) -> None:
    async def main() -> None:
        hosts = random.sample(range(2, 250), 2)
        a = await make_node(1, f"127.0.0.{hosts[0]}", resolv)
        b = await make_node(2, f"127.0.0.{hosts[1]}", resolv)
        try:
            b.mesh.connect([f"{a.mesh.host}:{a.mesh.port}"], replace=False)
            await body(a, b)
        finally:
            for node in (a, b):
                await node.dns.stop()
                await node.mesh.stop()

    asyncio.run(main())


@pytest.fixture
def resolv() -> str:
    return "/nonexistent/resolv.conf"  # no upstreams: only weave.local names are asked


def test_a_name_added_on_one_router_resolves_on_the_other(resolv: str) -> None:
    async def body(a: Node, b: Node) -> None:
        a.dns.add_entry(WEB, "c1", int(ipaddress.IPv4Address("10.32.0.7")))

        async def resolves() -> bool:
            return addresses(await lookup(b.addr, WEB)) == ["10.32.0.7"]

        await poll(resolves, "the name on the second router")
        reverse = await lookup(b.addr, "7.0.32.10.in-addr.arpa.", "PTR")
        assert [r.target.to_text() for rrset in reverse.answer for r in rrset] == [WEB]
        b.dns.add_entry(WEB, "c2", int(ipaddress.IPv4Address("10.40.0.7")))

        async def both_known_on_a() -> bool:
            return sorted(a.dns.nameserver.lookup_name(WEB)) == [0x0A200007, 0x0A280007]

        await poll(both_known_on_a, "the second router's entry on the first")
        a.dns.delete_entries("c1")

        async def only_b_left() -> bool:
            return addresses(await lookup(b.addr, WEB)) == ["10.40.0.7"]

        await poll(only_b_left, "the removal on the second router")

    two_routers(body, resolv)


def test_a_departed_router_takes_its_names_with_it(resolv: str) -> None:
    async def body(a: Node, b: Node) -> None:
        b.dns.add_entry(WEB, "c2", 0x0A280007)

        async def known_on_a() -> bool:
            return a.dns.nameserver.lookup_name(WEB) == [0x0A280007]

        await poll(known_on_a, "the entry on the first router")
        await b.mesh.stop()

        async def nxdomain_on_a() -> bool:
            return (await lookup(a.addr, WEB)).rcode() == dns.rcode.NXDOMAIN

        await poll(nxdomain_on_a, "the departed router's entry to go")

    two_routers(body, resolv)


class FakeIpam:
    def __init__(self) -> None:
        self.held: dict[str, list[CIDR]] = {}
        self.allocations = 0

    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]:
        return list(self.held.get(ident, []))

    async def allocate(self, ident: str, subnet: CIDR) -> CIDR:
        self.allocations += 1
        await asyncio.sleep(0)  # a real allocation waits for the loop
        cidr = CIDR(subnet.addr + 2, subnet.prefix_len)
        self.held.setdefault(ident, []).append(cidr)
        return cidr


class FakeBridge:
    def __init__(self, *present: str) -> None:
        self.addresses = [ipaddress.IPv4Interface(p) for p in present]

    def existing(self, network: ipaddress.IPv4Network) -> ipaddress.IPv4Interface | None:
        return next((a for a in self.addresses if a.ip in network), None)

    def ensure(self, cidr: ipaddress.IPv4Interface) -> None:
        if cidr not in self.addresses:
            self.addresses.append(cidr)


def test_one_listener_per_subnet_from_ipam_or_the_exposed_address(resolv: str) -> None:
    async def main() -> None:
        router = Router(RouterConfig(name=0x0A0000000001, nickname="n"), random.Random(1), 0.0)
        settings = DnsSettings(resolv_conf=resolv, allowed_networks=("127.0.0.0/16",))
        shell = DnsShell(router, settings, lambda: None, lambda: 0.0)
        ipam, bridge = FakeIpam(), FakeBridge("127.0.9.1/24")  # 127.0.9.0/24 is exposed
        listeners = DnsListeners(shell, ipam, bridge, port=0)
        shell.add_entry(WEB, "c1", 0x0A200007)
        firsts = await asyncio.gather(*(listeners.ensure_subnet("127.0.8.5/24") for _ in range(3)))
        assert firsts == ["127.0.8.2"] * 3 and ipam.allocations == 1
        assert ipam.held[DNS_IDENT] == [CIDR.parse("127.0.8.2/24")]
        assert await listeners.ensure_subnet("127.0.9.77/24") == "127.0.9.1"
        assert ipam.allocations == 1 and sorted(listeners.addresses()) == ["127.0.8.2", "127.0.9.1"]
        assert listeners.address_for("127.0.9.200") == "127.0.9.1"
        # the universe holds both subnets: the client's own subnet decides
        assert (shell.dns_address("127.0.9.200") or "").startswith("127.0.9.1:")
        assert (shell.dns_address("127.0.8.200") or "").startswith("127.0.8.2:")
        assert ipaddress.IPv4Interface("127.0.8.2/24") in bridge.addresses
        for host, port in shell.listen_addresses():
            assert addresses(await lookup((host, port), WEB)) == ["10.32.0.7"]
        await listeners.close()

    asyncio.run(main())


def test_without_ipam_an_unexposed_subnet_says_what_to_do(resolv: str) -> None:
    async def main() -> None:
        router = Router(RouterConfig(name=0x0A0000000001, nickname="n"), random.Random(1), 0.0)
        shell = DnsShell(router, DnsSettings(resolv_conf=resolv), lambda: None, lambda: 0.0)
        listeners = DnsListeners(shell, None, FakeBridge(), port=0)
        with pytest.raises(DnsListenError, match=r"weave expose.*--dns-listen-address"):
            await listeners.ensure_subnet("127.0.8.5/24")
        await listeners.close()

    asyncio.run(main())


def test_a_taken_listen_address_is_a_config_error_saying_what_to_do(resolv: str) -> None:
    async def main() -> None:
        router = Router(RouterConfig(name=0x0A0000000001, nickname="n"), random.Random(1), 0.0)
        host = f"127.0.0.{random.randint(2, 250)}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind((host, 0))
            settings = DnsSettings(
                resolv_conf=resolv, listen_address=f"{host}:{taken.getsockname()[1]}"
            )
            with pytest.raises(ConfigError, match="--dns-listen-address"):
                await start_dns(router, settings, lambda: None, lambda: 0.0)

    asyncio.run(main())


def test_a_bad_listen_address_is_a_value_error() -> None:
    for bad in ("53", "127.0.0.1", "127.0.0.1:dns", "127.0.0.1:70000", ":53"):
        with pytest.raises(ValueError, match="IP:PORT"):
            parse_listen_address(bad)
    assert parse_listen_address("[::1]:53") == ("::1", 53)


def test_as_a_ticker_the_shell_expires_tombstones_when_due(resolv: str) -> None:
    async def main() -> None:
        router = Router(RouterConfig(name=0x0A0000000001, nickname="n"), random.Random(1), 0.0)
        tickers: list[object] = []
        clock = {"offset": 1_600_000_000.0}
        settings = DnsSettings(resolv_conf=resolv)
        shell = await start_dns(
            router, settings, lambda: None, lambda: clock["offset"], add_ticker=tickers.append
        )
        assert tickers == [shell] and shell.next_wakeup() == float("inf")
        shell.add_entry(WEB, "c1", 0x0A200007)
        shell.delete_entries("c1")
        due = shell.next_wakeup()
        assert due != float("inf") and len(shell.entries()) == 1
        shell.tick(due - 60)
        assert len(shell.entries()) == 1
        shell.tick(due)
        assert shell.entries() == [] and shell.next_wakeup() == float("inf")
        await shell.stop()

    asyncio.run(main())


def test_no_listen_address_is_ever_an_upstream(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\nnameserver 127.0.7.2\nnameserver 192.0.2.53\n")

    async def main() -> None:
        router = Router(RouterConfig(name=0x0A0000000001, nickname="n"), random.Random(1), 0.0)
        shell = DnsShell(router, DnsSettings(resolv_conf=str(conf)), lambda: None, lambda: 0.0)
        await shell.listen("127.0.0.1", 0)
        assert shell.upstream_servers() == ("127.0.7.2", "192.0.2.53")
        await shell.listen("127.0.7.2", 0)  # a second listener, listed in resolv.conf
        assert [s.upstream_servers() for s in shell.servers()] == [("192.0.2.53",)] * 2
        await shell.stop()

    asyncio.run(main())
