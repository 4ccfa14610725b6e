"""Containers on different hosts talk through the sleeve overlay (real routers, real
kernel, harness namespaces only)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from weavenet.harness import Cluster, Container, Host, wait_until
from weavenet.harness.containers import (
    add_address,
    attached_container,
    connections,
    wait_reaches,
)
from weavenet.harness.mesh import wait_for_mesh
from weavenet.harness.transfer import tcp_transfer


def _container(host: Host, name: str, cidr: str) -> Container:
    return attached_container(host, name, cidr)


_connections = connections
_reaches = wait_reaches


def test_containers_on_two_hosts_reach_each_other(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, h2 = c.hosts
    h1.launch("--no-fastdp", "--no-fast-sleeve")
    h2.launch("--no-fastdp", "--no-fast-sleeve", h1.ip)
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
    h1.launch("--no-fastdp", "--no-fast-sleeve", "--password", "s3cret")
    h2.launch("--no-fastdp", "--no-fast-sleeve", "--password", "s3cret", h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=15)
    a = _container(h1, "a", "10.2.1.1/24")
    _container(h2, "b", "10.2.1.2/24")
    _reaches(a, "10.2.1.2")
    assert "encrypted   sleeve" in _connections(h1)


def test_partial_connectivity_relays_through_the_middle_host(
    cluster: Callable[..., Cluster],
) -> None:
    c = cluster(3)
    h1, h2, h3 = c.hosts
    h1.launch("--no-fastdp", "--no-fast-sleeve", "--no-discovery")
    h2.launch("--no-fastdp", "--no-fast-sleeve", "--no-discovery", h1.ip)
    h3.launch("--no-fastdp", "--no-fast-sleeve", "--no-discovery", h2.ip)
    wait_for_mesh([h1, h3], peers=3, established=1, timeout=20)
    wait_for_mesh([h2], peers=3, established=2, timeout=20)
    a = _container(h1, "a", "10.2.1.1/24")
    b = _container(h3, "b", "10.2.1.3/24")
    _reaches(a, "10.2.1.3", timeout=20)
    tcp_transfer(a, b, "10.2.1.3", 1 << 20)
    h2.stop()
    wait_until(lambda: not a.ping("10.2.1.3", timeout=1.0), timeout=20, message="h2 gone")


def test_multicast_reaches_every_host(cluster: Callable[..., Cluster]) -> None:
    c = cluster(3)
    h1, h2, h3 = c.hosts
    h1.launch("--no-fastdp", "--no-fast-sleeve")
    h2.launch("--no-fastdp", "--no-fast-sleeve", h1.ip)
    h3.launch("--no-fastdp", "--no-fast-sleeve", h2.ip)
    wait_for_mesh([h1, h2, h3], peers=3, established=2, timeout=20)
    sender = _container(h1, "s", "10.2.1.1/24")
    listeners = [_container(h, "l", f"10.2.1.{i}/24") for i, h in ((2, h2), (3, h3))]
    receive = (
        "import socket,struct,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('',5353));"
        "s.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,"
        "struct.pack('4s4s',socket.inet_aton('224.1.2.3'),socket.inet_aton(sys.argv[1])));"
        "s.settimeout(20);print('ready',flush=True);print(s.recv(100).decode())"
    )
    procs = [
        subprocess.Popen(
            lst.exec_argv([sys.executable, "-c", receive, f"10.2.1.{i}"]),
            stdout=subprocess.PIPE,
            text=True,
        )
        for i, lst in ((2, listeners[0]), (3, listeners[1]))
    ]
    send = (
        "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        "s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_TTL,2);"
        "s.sendto(b'hello-multicast',('224.1.2.3',5353))"
    )
    try:
        _reaches(sender, "10.2.1.3", timeout=20)  # the mesh carries unicast first
        for p in procs:  # both listeners have joined the group
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        sender.run([sys.executable, "-c", send], timeout=30)  # exactly one datagram
        outputs = [p.communicate(timeout=30)[0].strip() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert outputs == ["hello-multicast", "hello-multicast"]


def test_garbage_datagrams_are_dropped_while_traffic_flows(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, h2 = c.hosts
    h1.launch("--no-fastdp", "--no-fast-sleeve")
    h2.launch("--no-fastdp", "--no-fast-sleeve", h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=15)
    a = _container(h1, "a", "10.2.1.1/24")
    _container(h2, "b", "10.2.1.2/24")
    _reaches(a, "10.2.1.2")
    flood = (
        "import os,random,socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "r=random.Random(7)\n"
        "for i in range(10000):\n"
        " n=r.choice([0,1,5,6,13,14,20,60,200,1400])\n"
        " s.sendto(os.urandom(n),(sys.argv[1],6783))"
    )
    h2.run([sys.executable, "-c", flood, h1.ip], timeout=120)
    _reaches(a, "10.2.1.2")
    stats = h1.report()["Router"]["DatapathStats"]
    assert stats["dropped_packets"] >= 9000, stats
    metrics = h1.run(
        [
            sys.executable,
            "-c",
            "import urllib.request as u;print(u.urlopen('http://127.0.0.1:6784/metrics').read().decode())",
        ]
    ).stdout
    assert "weavenet_sleeve_dropped_packets_total" in metrics


def test_connectivity_matrix_on_two_hosts(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, h2 = c.hosts
    h1.launch("--no-fastdp", "--no-fast-sleeve")
    h2.launch("--no-fastdp", "--no-fast-sleeve", h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=15)
    a1 = _container(h1, "a1", "10.2.1.1/24")  # subnet A on h1
    a2 = _container(h1, "a2", "10.2.1.2/24")
    b1 = _container(h1, "b1", "10.2.2.1/24")  # subnet B on h1
    both = _container(h1, "ab", "10.2.1.9/24")  # on both subnets
    add_address(h1, both, "10.2.2.9/24")
    a3 = _container(h2, "a3", "10.2.1.3/24")  # subnet A on h2
    b3 = _container(h2, "b3", "10.2.2.3/24")  # subnet B on h2
    _reaches(a1, "10.2.1.2")  # same host, same subnet
    assert not b1.ping("10.2.1.1", timeout=1.0)  # same host, different subnets
    _reaches(both, "10.2.1.1")  # a container on both subnets reaches both
    _reaches(both, "10.2.2.1")
    _reaches(a1, "10.2.1.3")  # different hosts, same subnet
    _reaches(b1, "10.2.2.3")
    _reaches(b3, "10.2.2.9")
    assert not a3.ping("10.2.2.1", timeout=1.0)  # different hosts, different subnets
    assert not b3.ping("10.2.1.1", timeout=1.0)
    assert not a2.ping("10.2.2.3", timeout=1.0)
