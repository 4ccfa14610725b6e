"""Containers on different hosts talk through the sleeve overlay (real routers, real
kernel, harness namespaces only)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from weavenet.dataplane import attach, resolve_container
from weavenet.harness import Cluster, Container, Host, wait_until
from weavenet.harness.mesh import wait_for_mesh

IF = ipaddress.IPv4Interface


def _container(host: Host, name: str, cidr: str) -> Container:
    container = host.add_container(name)
    ref = resolve_container(f"netns:{container.netns}", netns=host.netns)
    attach(ref, [IF(cidr)], netns=host.netns)
    return container


def _connections(host: Host) -> str:
    return host.weave("status", "connections").stdout


def _reaches(src: Container, dst: str, timeout: float = 15.0) -> None:
    wait_until(lambda: src.ping(dst, timeout=1.0), timeout=timeout, message=f"ping {dst}")


def test_containers_on_two_hosts_reach_each_other(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, h2 = c.hosts
    h1.launch()
    h2.launch(h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=15)
    wait_until(
        lambda: "sleeve" in _connections(h1) and "mtu=" in _connections(h1),
        timeout=15,
        message="sleeve established with a discovered MTU",
    )
    a = _container(h1, "a", "10.2.1.1/24")
    b = _container(h2, "b", "10.2.1.2/24")
    other = _container(h2, "x", "10.2.2.2/24")
    _reaches(a, "10.2.1.2")
    _reaches(b, "10.2.1.1")
    assert not other.ping("10.2.1.1", timeout=1.0), "different subnets must stay isolated"
    assert "established sleeve" in _connections(h2)


def test_encrypted_sleeve_carries_traffic(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, h2 = c.hosts
    h1.launch("--password", "s3cret")
    h2.launch("--password", "s3cret", h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=15)
    a = _container(h1, "a", "10.2.1.1/24")
    _container(h2, "b", "10.2.1.2/24")
    _reaches(a, "10.2.1.2")
    assert "encrypted   sleeve" in _connections(h1)
