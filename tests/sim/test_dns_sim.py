"""Three nameservers on real router cores in the simulated network: entries spread by
gossip on the "nameserver" channel, tombstones follow, and a departed peer's entries go
away everywhere and come back when it returns."""

from __future__ import annotations

from tests.sim.simnet import SimNet
from weavenet.core.dns.nameserver import NAMESERVER_CHANNEL, Nameserver

WEB = "web.weave.local."
IP = [0x0A200001, 0x0A240001, 0x0A280001]


def dns_mesh(seed: int = 7) -> tuple[SimNet, list[Nameserver]]:
    net = SimNet(3, seed, discovery=True)
    servers = []
    for router in net.routers:
        ns = Nameserver(router.name, "weave.local.", router)
        ns.attach_gossip(router.new_gossip(NAMESERVER_CHANNEL, ns))
        router.on_peer_gone(ns.peer_gone)
        servers.append(ns)
    net.connect(1, [0])
    net.connect(2, [1])
    assert net.run_until(lambda: net.established_counts() == [2, 2, 2], limit=120)
    return net, servers


def everywhere(servers: list[Nameserver], name: str, expected: list[int]) -> bool:
    return all(sorted(ns.lookup_name(name)) == sorted(expected) for ns in servers)


def test_an_entry_added_on_one_appears_on_all() -> None:
    net, servers = dns_mesh()
    servers[0].add_entry(WEB, "c0", IP[0], net.now)
    net.flush(0)
    assert net.run_until(lambda: everywhere(servers, WEB, [IP[0]]), limit=5)
    assert servers[2].lookup_addr(IP[0]) == WEB


def test_one_name_on_three_hosts_resolves_to_all_three_everywhere() -> None:
    net, servers = dns_mesh()
    for i, ns in enumerate(servers):
        ns.add_entry(WEB, f"c{i}", IP[i], net.now)
        net.flush(i)
    assert net.run_until(lambda: everywhere(servers, WEB, IP), limit=5)
    assert [ns.local_entry_count() for ns in servers] == [1, 1, 1]


def test_a_tombstone_propagates() -> None:
    net, servers = dns_mesh()
    servers[1].add_entry(WEB, "c1", IP[1], net.now)
    net.flush(1)
    assert net.run_until(lambda: everywhere(servers, WEB, [IP[1]]), limit=5)
    servers[1].delete_entries(container="c1", now=net.now)
    net.flush(1)
    assert net.run_until(lambda: everywhere(servers, WEB, []), limit=5)
    assert all(len(ns.entries()) == 1 and not ns.entries()[0].live for ns in servers)


def test_a_departed_peers_entries_disappear_and_come_back_when_it_returns() -> None:
    net, servers = dns_mesh()
    for i, ns in enumerate(servers):
        ns.add_entry(WEB, f"c{i}", IP[i], net.now)
        net.flush(i)
    assert net.run_until(lambda: everywhere(servers, WEB, IP), limit=5)
    r1, r2 = net.routers[1], net.routers[2]
    net.unreachable.add(2)  # r2 departs: no dials to or from it succeed
    r2.forget([net.address(1)], net.now)  # r2 must not dial back on its own
    r1.connection_closed(r1.by_peer[r2.name].id, "test", net.now)
    net.flush(1)
    if r2.name in net.routers[0].by_peer:
        r0 = net.routers[0]
        r2.forget([net.address(0)], net.now)
        r0.connection_closed(r0.by_peer[r2.name].id, "test", net.now)
        net.flush(0)
    assert net.run_until(lambda: everywhere(servers[:2], WEB, IP[:2]), limit=60)
    assert sorted(servers[2].lookup_name(WEB)) == [IP[2]]  # alone, it only has its own
    net.unreachable.clear()
    net.connect(2, [1])
    assert net.run_until(lambda: everywhere(servers, WEB, IP), limit=60)
