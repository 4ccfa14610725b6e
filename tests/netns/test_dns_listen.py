"""The DNS listen addresses against a real kernel: a weave bridge in a harness host
namespace, two subnets (one exposed, one given an address by IPAM under weave:dns), and
containers in each asking over their own veth get answers on port 53.

The DnsShell runs on an event loop in a thread that has entered the host namespace, so
its sockets live there; bridge changes name the namespace explicitly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import shutil
import sys
from collections.abc import Awaitable, Callable

from weavenet.core.ipam.address import CIDR
from weavenet.core.mesh.config import RouterConfig
from weavenet.core.mesh.router import Router
from weavenet.dataplane import ensure_bridge
from weavenet.dataplane.bridge import bridge_addresses, set_bridge_address
from weavenet.dataplane.dns_address import ensure_dns_address
from weavenet.dataplane.netlink import run_in_netns
from weavenet.harness import Cluster
from weavenet.harness.containers import attached_container
from weavenet.harness.netns import Container
from weavenet.io.dns_listeners import DnsListeners, KernelBridge
from weavenet.io.dns_shell import DnsSettings, DnsShell

WEB = "web.weave.local."
SUBNET_A, SUBNET_B = "10.32.0.0/16", "10.33.0.0/16"
EXPOSED_B = "10.33.0.1/16"

QUERY = """
import sys, dns.message, dns.query
q = dns.message.make_query(sys.argv[2], "A")
r = dns.query.{proto}(q, sys.argv[1], timeout=2)
print(" ".join(sorted(x.address for rr in r.answer for x in rr)) or dns.rcode.to_text(r.rcode()))
"""


class FakeIpam:
    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]:
        return []

    async def allocate(self, ident: str, subnet: CIDR) -> CIDR:
        return CIDR(subnet.addr + 2, subnet.prefix_len)


def ask(container: Container, server: str, name: str, proto: str) -> str:
    if shutil.which("dig"):
        flag = "+tcp" if proto == "tcp" else "+notcp"
        out = container.run(["dig", "+short", flag, f"@{server}", name]).stdout
        return " ".join(sorted(out.split())) or "NXDOMAIN"
    script = QUERY.format(proto=proto)
    return container.run([sys.executable, "-c", script, server, name]).stdout.strip()


def in_host_loop(netns: str, body: Callable[[], Awaitable[None]]) -> None:
    run_in_netns(netns, lambda: asyncio.run(body()))


def test_containers_in_two_subnets_reach_the_dns_server_over_their_veths() -> None:
    with Cluster(1) as cluster:
        host = cluster[0]
        ensure_bridge(netns=host.netns)
        set_bridge_address(ipaddress.IPv4Interface(EXPOSED_B), True, netns=host.netns)
        c1 = attached_container(host, "c1", "10.32.0.5/16")
        c2 = attached_container(host, "c2", "10.33.0.5/16")

        async def body() -> None:
            router = Router(RouterConfig(name=0x0A0000000001, nickname="h1"), random.Random(1), 0.0)
            settings = DnsSettings(resolv_conf="/nonexistent")
            shell = DnsShell(router, settings, lambda: None, lambda: 0.0)
            listeners = DnsListeners(shell, FakeIpam(), KernelBridge(netns=host.netns))
            shell.add_entry(WEB, "c1", int(ipaddress.IPv4Address("10.32.0.5")))
            try:
                assert await listeners.ensure_subnet("10.32.0.5/16") == "10.32.0.2"
                assert await listeners.ensure_subnet("10.33.0.5/16") == "10.33.0.1"
                answers = await asyncio.gather(
                    *(
                        asyncio.to_thread(ask, c, server, WEB, proto)
                        for c, server in ((c1, "10.32.0.2"), (c2, "10.33.0.1"))
                        for proto in ("udp", "tcp")
                    )
                )
                assert answers == ["10.32.0.5"] * 4
                missing = await asyncio.to_thread(ask, c2, "10.33.0.1", "nope.weave.local.", "udp")
                assert missing == "NXDOMAIN"
            finally:
                await listeners.close()

        in_host_loop(host.netns, body)
        _mac, addrs = bridge_addresses(netns=host.netns)
        assert {str(a) for a in addrs} == {"10.32.0.2/16", EXPOSED_B}
        assert not ensure_dns_address(ipaddress.IPv4Interface("10.32.0.2/16"), netns=host.netns)
