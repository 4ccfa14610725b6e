"""The dataplane against a real kernel, inside harness namespaces only.

Every dataplane call names its host namespace (`netns=host.netns`); containers are harness
container namespaces. Nothing touches the root namespace.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import os
import re
import select
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from weavenet.dataplane import (
    CONTAINER_IFNAME,
    HOST_NETNS_MESSAGE,
    ContainerRef,
    DataplaneError,
    FirewallState,
    bridge_addresses,
    bridge_exists,
    container_addresses,
    detach,
    ensure_bridge,
    ensure_tap,
    expose,
    firewall_intact,
    format_ps_line,
    hide,
    open_tap_fd,
    reapply_firewall,
    resolve_container,
    run_in_netns,
    veth_name,
)
from weavenet.dataplane.attach import attach  # the package's `attach` is the module once imported
from weavenet.harness import Cluster, Container, Host, wait_until
from weavenet.harness.containers import reaches

IF = ipaddress.IPv4Interface
ETH_P_ARP = 0x0806
ETH_P_ALL = 0x0003
ETH_P_IPV6 = 0x86DD


def ref(c: Container) -> ContainerRef:
    return resolve_container(f"netns:{c.netns}", netns=c.host.netns)


def attached(host: Host, name: str, *cidrs: str) -> tuple[Container, ContainerRef]:
    container = host.add_container(name)
    cref = ref(container)
    attach(cref, [IF(c) for c in cidrs], netns=host.netns)
    return container, cref


def link_details(ns: Container | Host, ifname: str) -> str:
    return ns.run(["ip", "-d", "link", "show", "dev", ifname]).stdout


def link_exists(ns: Container | Host, ifname: str) -> bool:
    return ns.run(["ip", "link", "show", "dev", ifname], check=False).returncode == 0


def is_garp(frame: bytes, mac: str, ip: str) -> bool:
    if len(frame) < 42 or frame[12:14] != ETH_P_ARP.to_bytes(2, "big"):
        return False
    sha, spa, tpa = frame[22:28], frame[28:32], frame[38:42]
    want_ip = ipaddress.IPv4Address(ip).packed
    return sha == bytes.fromhex(mac.replace(":", "")) and spa == tpa == want_ip


def read_until(fd_read: Callable[[], bytes], fileno: int, match: Callable[[bytes], bool]) -> bool:
    deadline = time.monotonic() + 5.0
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fileno], [], [], left)
        if ready and match(fd_read()):
            return True
    return False


# --- bridge and TAP --------------------------------------------------------------------------


def test_bridge_is_idempotent_with_a_stable_mac(cluster: Callable[..., Cluster]) -> None:
    h1, h2 = cluster(2).hosts
    first = ensure_bridge(netns=h1.netns)
    assert first.mtu == 65535
    assert ensure_bridge(netns=h1.netns) == first
    assert bridge_exists(netns=h1.netns)
    assert not bridge_exists(netns=h2.netns)
    attached(h1, "c1", "10.2.1.1/24")  # a port joining must not change the bridge MAC
    assert ensure_bridge(netns=h1.netns) == first
    assert "state UP" in h1.run(["ip", "link", "show", "weave"]).stdout
    with pytest.raises(DataplaneError, match="not a bridge"):
        ensure_bridge("eth0", netns=h1.netns)


def test_tap_is_a_bridge_port_carrying_container_frames(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    ensure_bridge(netns=h1.netns)
    index = ensure_tap(netns=h1.netns)
    assert ensure_tap(netns=h1.netns) == index
    details = link_details(h1, "weave-tap")
    assert "tun type tap" in details and "master weave" in details and "mtu 65521" in details
    fd = open_tap_fd(netns=h1.netns)
    try:
        os.set_blocking(fd, False)
        _, cref = attached(h1, "c1", "10.2.1.1/24")
        mac = container_addresses(cref).mac
        assert mac is not None
        assert read_until(lambda: os.read(fd, 65536), fd, lambda f: is_garp(f, mac, "10.2.1.1"))
    finally:
        os.close(fd)
    assert link_exists(h1, "weave-tap"), "the TAP must persist after its fd is closed"


def test_bridge_and_tap_emit_no_ipv6_of_their_own(cluster: Callable[..., Cluster]) -> None:
    """The kernel would give both devices a link-local address on carrier, then send MLD
    reports, DAD and router solicitations out of the TAP: the sleeve relays every one
    along the broadcast trees of a mesh with no container attached (Weave's bridge too)."""
    h1 = cluster(1).hosts[0]
    ensure_bridge(netns=h1.netns)
    ensure_tap(netns=h1.netns)
    fd = open_tap_fd(netns=h1.netns)  # carrier on the TAP: the bridge comes up now
    try:
        os.set_blocking(fd, False)
        ipv6 = ETH_P_IPV6.to_bytes(2, "big")
        seen = read_until(lambda: os.read(fd, 65536), fd, lambda f: f[12:14] == ipv6)
        assert not seen, "the bridge sent an IPv6 frame of its own out of the TAP"
    finally:
        os.close(fd)
    for dev in ("weave", "weave-tap"):
        sysctl = h1.run(["cat", f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"]).stdout
        assert sysctl.strip() == "1", dev
        assert "inet6" not in h1.run(["ip", "-6", "addr", "show", "dev", dev]).stdout, dev


# --- attach / detach / ps -------------------------------------------------------------------


def test_attach_connects_a_subnet_and_isolates_others(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(2).hosts[0]
    ensure_bridge(netns=h1.netns)
    c1, r1 = attached(h1, "c1", "10.2.1.1/24")
    c2, _ = attached(h1, "c2", "10.2.1.2/24")
    c3, r3 = attached(h1, "c3", "10.2.2.1/24")
    assert reaches(c1, "10.2.1.2") and reaches(c2, "10.2.1.1")
    assert not c3.ping("10.2.1.1", timeout=1.0), "different subnets must be isolated"

    host_end = veth_name(r1.ident)
    assert len(host_end) <= 15 and host_end.startswith("vethwepl")
    details = link_details(h1, host_end)
    assert "master weave" in details and "hairpin on" in details
    assert "mtu 65535" in link_details(c1, CONTAINER_IFNAME)
    routes = c1.run(["ip", "route", "show"]).stdout
    assert "224.0.0.0/4 dev ethwe scope link" in routes
    assert "default" not in routes

    attach(r3, [IF("10.2.1.3/24")], netns=h1.netns)  # second subnet on the same ethwe
    assert reaches(c3, "10.2.1.1") and reaches(c1, "10.2.1.3")
    assert reaches(c3, "10.2.2.1")


def test_attach_is_idempotent_and_ps_reports_addresses(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    ensure_bridge(netns=h1.netns)
    _, cref = attached(h1, "c1", "10.2.1.1/24", "10.2.2.1/24")
    first = container_addresses(cref)
    again = attach(cref, [IF("10.2.1.1/24")], netns=h1.netns, multicast_route=False)
    assert again.mac == first.mac and again.ifname == veth_name(cref.ident)
    assert container_addresses(cref) == first
    assert first.cidrs == [IF("10.2.1.1/24"), IF("10.2.2.1/24")]
    line = format_ps_line(cref.ident, first.mac, first.cidrs)
    assert line == f"{cref.ident} {first.mac} 10.2.1.1/24 10.2.2.1/24"


def test_detach_removes_addresses_then_the_veth(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    ensure_bridge(netns=h1.netns)
    c1, r1 = attached(h1, "c1", "10.2.1.1/24", "10.2.2.1/24")
    c2, _ = attached(h1, "c2", "10.2.1.2/24")
    assert detach(r1, [IF("10.2.1.1/24"), IF("10.9.9.9/24")]) == [IF("10.2.1.1/24")]
    assert container_addresses(r1).cidrs == [IF("10.2.2.1/24")]
    assert not c2.ping("10.2.1.1", timeout=1.0)
    assert link_exists(h1, veth_name(r1.ident))
    assert detach(r1) == [IF("10.2.2.1/24")]
    assert container_addresses(r1) == (None, [])
    assert not link_exists(c1, CONTAINER_IFNAME)
    assert not link_exists(h1, veth_name(r1.ident))
    assert detach(r1) == []


def test_attach_announces_addresses_with_gratuitous_arp(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    ensure_bridge(netns=h1.netns)

    def sniffer() -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        sock.bind(("weave", 0))
        return sock

    with run_in_netns(h1.netns, sniffer) as sock:
        _, cref = attached(h1, "c1", "10.2.1.1/24", "10.2.2.1/24")
        mac = container_addresses(cref).mac
        assert mac is not None
        for ip in ("10.2.1.1", "10.2.2.1"):
            got = read_until(
                lambda: sock.recv(2048), sock.fileno(), lambda f, ip=ip: is_garp(f, mac, ip)
            )
            assert got, f"no gratuitous ARP for {ip}"


def test_attach_without_a_bridge_fails_cleanly(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    c1 = h1.add_container("c1")
    with pytest.raises(DataplaneError, match="bridge weave not found"):
        attach(ref(c1), [IF("10.2.1.1/24")], netns=h1.netns)
    assert not link_exists(c1, CONTAINER_IFNAME)


# --- resolving containers -------------------------------------------------------------------


@contextmanager
def sleeper(ns: Container) -> Iterator[int]:
    proc = subprocess.Popen(ns.exec_argv(["sleep", "60"]), stdin=subprocess.DEVNULL)
    try:
        yield proc.pid  # `ip netns exec` execs the command: same pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


class _FakeDocker(http.server.BaseHTTPRequestHandler):
    containers: dict[str, dict[str, object]] = {}

    def do_GET(self) -> None:
        path = re.sub(r"^/v[0-9.]+/", "/", self.path)  # aiodocker pins the API version
        name = path.removeprefix("/containers/").removesuffix("/json")
        info = self.containers.get(name)
        body = json.dumps(info or {"message": f"No such container: {name}"}).encode()
        self.send_response(200 if info else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def fake_docker(path: Path, containers: dict[str, dict[str, object]]) -> Iterator[str]:
    handler = type("Handler", (_FakeDocker,), {"containers": containers})
    server = socketserver.UnixStreamServer(str(path), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_resolve_container_specs(cluster: Callable[..., Cluster]) -> None:
    c = cluster(1)
    h1 = c.hosts[0]
    c1 = h1.add_container("c1")
    by_name = resolve_container(f"netns:{c1.netns}", netns=h1.netns)
    assert by_name == ContainerRef(f"netns:{c1.netns}", f"/run/netns/{c1.netns}")
    by_path = resolve_container(f"netns:/run/netns/{c1.netns}", netns=h1.netns)
    assert by_path.netns_path == f"/run/netns/{c1.netns}"
    with sleeper(c1) as pid:
        wait_until(lambda: c1.owns_pid(pid), timeout=10)
        assert resolve_container(f"pid:{pid}", netns=h1.netns).netns_path == f"/proc/{pid}/ns/net"
        docker_id = "ab12" * 16
        info: dict[str, object] = {"Id": docker_id, "State": {"Pid": pid, "Running": True}}
        with fake_docker(c.tmpdir / "docker.sock", {"web": info}) as docker_host:
            found = resolve_container("web", netns=h1.netns, docker_host=docker_host)
            assert found == ContainerRef(docker_id, f"/proc/{pid}/ns/net")
            assert veth_name(found.ident) == "vethweplab12ab1"
            with pytest.raises(DataplaneError, match="No such container: nope"):
                resolve_container("nope", netns=h1.netns, docker_host=docker_host)


def test_resolve_container_refusals(cluster: Callable[..., Cluster]) -> None:
    c = cluster(1)
    h1 = c.hosts[0]
    with pytest.raises(DataplaneError) as info:
        resolve_container(f"netns:{h1.netns}", netns=h1.netns)
    assert str(info.value) == HOST_NETNS_MESSAGE
    with pytest.raises(DataplaneError, match="not found"):
        resolve_container(f"netns:{c.prefix}-missing", netns=h1.netns)
    assert not Path(f"/run/netns/{c.prefix}-missing").exists(), "must never create a netns"
    with pytest.raises(DataplaneError, match="cannot reach the Docker daemon"):
        resolve_container("web", docker_host=f"unix://{c.tmpdir}/absent.sock")


# --- expose / hide / firewall ---------------------------------------------------------------


def test_expose_gives_the_host_one_subnet_and_survives_a_flush(
    cluster: Callable[..., Cluster],
) -> None:
    h1 = cluster(2).hosts[0]
    ensure_bridge(netns=h1.netns)
    c1, _ = attached(h1, "c1", "10.2.1.1/24")
    attached(h1, "c2", "10.2.1.2/24")
    attached(h1, "c3", "10.2.2.1/24")
    assert not h1.ping("10.2.1.1", timeout=1.0)

    state = expose(IF("10.2.1.254/24"), netns=h1.netns)
    assert expose(IF("10.2.1.254/24"), state=state, netns=h1.netns) == state
    assert bridge_addresses(netns=h1.netns)[1] == [IF("10.2.1.254/24")]
    assert reaches(h1, "10.2.1.1")
    assert not h1.ping("10.2.2.1", timeout=1.0), "only the exposed subnet is reachable"
    assert reaches(c1, "10.2.1.2"), "our forward chain must not block bridged traffic"
    table = h1.run(["nft", "list", "table", "ip", "weavenet"]).stdout
    assert table.count("masquerade") == 2 and "10.2.1.0/24" in table
    assert firewall_intact(state, netns=h1.netns)

    h1.run(["nft", "flush", "ruleset"])
    assert not firewall_intact(state, netns=h1.netns)
    reapply_firewall(state, netns=h1.netns)
    assert firewall_intact(state, netns=h1.netns)
    assert FirewallState.from_json(json.loads(json.dumps(state.to_json()))) == state

    hidden = hide(IF("10.2.1.254/24"), state=state, netns=h1.netns)
    assert hidden.exposed == ()
    assert bridge_addresses(netns=h1.netns)[1] == []
    assert not h1.ping("10.2.1.1", timeout=1.0)
    assert firewall_intact(hidden, netns=h1.netns)
    assert not firewall_intact(state, netns=h1.netns)


def test_expose_masquerades_traffic_routed_in_from_another_host(
    cluster: Callable[..., Cluster],
) -> None:
    """h2 routes 10.2.1.0/24 via h1 (on the harness LAN); c1 has no default route, so it can
    answer h2 only if h1 masquerades h2's packets behind the bridge address."""
    h1, h2 = cluster(2).hosts
    ensure_bridge(netns=h1.netns)
    attached(h1, "c1", "10.2.1.1/24")
    h1.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    h2.run(["ip", "route", "add", "10.2.1.0/24", "via", h1.ip, "dev", "eth0"])
    state = expose(IF("10.2.1.254/24"), masquerade=False, netns=h1.netns)
    assert reaches(h1, "10.2.1.1")
    assert not h2.ping("10.2.1.1", timeout=1.0), "no masquerade: c1 cannot route the reply"
    state = expose(IF("10.2.1.254/24"), state=state, netns=h1.netns)
    assert reaches(h2, "10.2.1.1")
    hide(IF("10.2.1.254/24"), state=state, netns=h1.netns)
    assert not h2.ping("10.2.1.1", timeout=1.0)
