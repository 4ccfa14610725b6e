"""Relay: two hosts that cannot reach each other directly (the underlay drops their traffic)
talk through a router of the other implementation."""

from __future__ import annotations

from collections.abc import Callable

from tests.interop.helpers import wait_mesh, wait_tables_agree
from weavenet.harness import Container, Host
from weavenet.harness.containers import attached_container, wait_reaches
from weavenet.harness.goweaver import GoWeaver, InteropCluster, attach_go_container
from weavenet.harness.transfer import tcp_transfer


def _cut(c: InteropCluster, x: Host, y: Host) -> None:
    """Drop every underlay packet between x and y (bridged traffic passes the LAN's FORWARD)."""
    for src, dst in ((x, y), (y, x)):
        c.iptables("-A", "FORWARD", "-s", src.ip, "-d", dst.ip, "-j", "DROP")


def _talk(left: Container, right: Container) -> None:
    wait_reaches(left, "10.2.1.3", timeout=30)
    wait_reaches(right, "10.2.1.1", timeout=30)
    tcp_transfer(left, right, "10.2.1.3", 1 << 20)


def test_two_go_hosts_talk_through_our_router(
    interop: Callable[..., InteropCluster], go: Callable[..., GoWeaver]
) -> None:
    c = interop(3)
    h1, h2, h3 = c.hosts
    _cut(c, h1, h3)
    h2.launch()
    g1 = go(c, 0, peers=[h2.ip])
    g3 = go(c, 2, peers=[h2.ip])
    wait_mesh([g1, h2, g3], peers=3, est=[1, 2, 1])
    wait_tables_agree([g1, h2, g3])
    _talk(attach_go_container(h1, "a", "10.2.1.1/24"), attach_go_container(h3, "c", "10.2.1.3/24"))
    routes = {r["Dest"]: r["Via"] for r in g1.report()["Router"]["UnicastRoutes"]}
    assert routes[g3.name] == h2.report()["Router"]["Name"], routes


def test_two_of_our_hosts_talk_through_a_go_router(
    interop: Callable[..., InteropCluster], go: Callable[..., GoWeaver]
) -> None:
    c = interop(3)
    h1, h2, h3 = c.hosts
    _cut(c, h1, h3)
    g2 = go(c, 1)
    h1.launch(h2.ip)
    h3.launch(h2.ip)
    wait_mesh([h1, g2, h3], peers=3, est=[1, 2, 1])
    wait_tables_agree([h1, g2, h3])
    _talk(attached_container(h1, "a", "10.2.1.1/24"), attached_container(h3, "c", "10.2.1.3/24"))
