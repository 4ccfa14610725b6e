"""The fast sleeve between real routers in harness namespaces (issue 8, acceptance 2, 3
and 6): fallback from fastdp and back, the encrypted fast sleeve (no plaintext on the
underlay, replays rejected and counted), plain transfers and big pings, and a relaying
chain."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from tests.netns.test_sleeve_acceptance import MARKER, capture

from weavenet.harness import Cluster, Container, Host, wait_until
from weavenet.harness.containers import attached_container, connections, wait_reaches
from weavenet.harness.mesh import wait_for_mesh
from weavenet.harness.transfer import tcp_transfer

HUNDRED_MB = 100 << 20
FAST_PORT = 6785


def _fast(host: Host) -> dict[str, Any]:
    diagnostics: dict[str, Any] = host.report()["Router"]["OverlayDiagnostics"]["fast sleeve"]
    return diagnostics


def _on(host: Host, overlay: str, peers: int = 1) -> bool:
    """`peers` established connections on `overlay` (e.g. 'fast sleeve', 'fastdp')."""
    pattern = re.compile(rf"established\s+(encrypted\s+|unencrypted\s+)?{overlay} ")
    return sum(bool(pattern.search(line)) for line in connections(host).splitlines()) >= peers


def _two_hosts(c: Cluster, *args: str, overlay: str) -> tuple[Host, Host, Container, Container]:
    h1, h2 = c.hosts
    h1.launch(*args)
    h2.launch(*args, h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=20)
    wait_until(
        lambda: _on(h1, overlay) and _on(h2, overlay),
        timeout=30,
        message=f"{overlay} on both",
        describe=lambda: connections(h1) + connections(h2),
    )
    a = attached_container(h1, "a", "10.2.1.1/24")
    b = attached_container(h2, "b", "10.2.1.2/24")
    wait_reaches(a, "10.2.1.2")
    return h1, h2, a, b


def test_plain_fast_sleeve_carries_100_mb_and_big_pings(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, _h2, a, b = _two_hosts(c, "--no-fastdp", overlay="fast sleeve")
    before = _fast(h1)["SuperframesOut"]
    tcp_transfer(a, b, "10.2.1.2", HUNDRED_MB)
    assert _fast(h1)["SuperframesOut"] - before >= 1000, _fast(h1)
    assert a.ping("10.2.1.2", size=8000), "ping -s 8000 over the fast sleeve"
    assert b.ping("10.2.1.1", size=30000), "ping -s 30000 over the fast sleeve"
    assert _on(h1, "fast sleeve"), connections(h1)


def _block(c: Cluster, port: int, on: bool) -> None:
    action = "-I" if on else "-D"
    c.iptables(action, "FORWARD", "-p", "udp", "--dport", str(port), "-j", "DROP")


def test_blocked_vxlan_falls_back_to_the_fast_sleeve_and_comes_back(
    cluster: Callable[..., Cluster],
) -> None:
    c = cluster(2)
    h1, h2, a, b = _two_hosts(c, overlay="fastdp")
    _block(c, 6784, True)
    wait_until(
        lambda: _on(h1, "fast sleeve") and "reason=" in connections(h1),
        timeout=30,
        message="fallback to the fast sleeve within 30 s",
        describe=lambda: connections(h1),
    )
    assert "fastdp: no heartbeat ack" in connections(h1), connections(h1)
    wait_reaches(a, "10.2.1.2", timeout=15)
    before = _fast(h1)["SuperframesOut"]
    tcp_transfer(a, b, "10.2.1.2", 8 << 20)
    assert _fast(h1)["SuperframesOut"] - before >= 100, "not on the fast sleeve"
    assert "using fast sleeve: fastdp: no heartbeat ack" in h1.log()
    _block(c, 6784, False)
    wait_until(
        lambda: _on(h1, "fastdp") and _on(h2, "fastdp"),
        timeout=60,
        message="back on fastdp within 60 s",
        describe=lambda: connections(h1),
    )
    tcp_transfer(a, b, "10.2.1.2", 4 << 20)


def _replay(sender: Host, receiver: Host, datagrams: list[bytes]) -> None:
    """Send captured datagrams again, from the sender's namespace to the fast port."""
    resend = (
        "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"for p in sys.argv[2:]: s.sendto(bytes.fromhex(p),(sys.argv[1],{FAST_PORT}))"
    )
    sender.run([sys.executable, "-c", resend, receiver.ip, *(d.hex() for d in datagrams)])


def test_encrypted_fast_sleeve_hides_the_marker_and_rejects_replays(
    cluster: Callable[..., Cluster],
) -> None:
    c = cluster(2)
    h1, h2, a, b = _two_hosts(c, "--password", "s3cret", overlay="encrypted\\s+fast sleeve")
    for host in (h1, h2):
        assert "fastdp" not in connections(host), connections(host)
    with capture(c) as captured:
        tcp_transfer(a, b, "10.2.1.2", 1 << 20, fill=MARKER)
    cap = captured[0]
    fast = [u for u in cap.udp() if (u.src, u.dst, u.dport) == (h1.ip, h2.ip, FAST_PORT)]
    assert sum(len(u.payload) for u in fast) >= 1 << 20, f"{len(fast)} fast sleeve packets"
    assert cap.frames_with(MARKER) == 0, "plaintext marker seen on the underlay"

    # One datagram of a superframe h2 accepted (a GSO run is cut at the datagram size).
    size = int(re.search(r"mtu=(\d+)", connections(h1)).group(1))  # type: ignore[union-attr]
    picks = [fast[len(fast) // 2].payload[:size], fast[-1].payload[:size]]
    before = _fast(h2)
    _replay(h1, h2, picks)
    wait_until(
        lambda: _fast(h2)["Replayed"] >= before["Replayed"] + len(picks),
        timeout=10,
        message="h2 counts the replayed datagrams",
        describe=lambda: _fast(h2),
    )
    after = _fast(h2)
    assert after["SuperframesIn"] == before["SuperframesIn"] or after["Forged"] == 0
    assert after["Forged"] == before["Forged"], after
    tcp_transfer(a, b, "10.2.1.2", HUNDRED_MB)
    assert _on(h1, "encrypted\\s+fast sleeve"), connections(h1)


def test_chain_relays_over_the_fast_sleeve(cluster: Callable[..., Cluster]) -> None:
    """fastdp cannot relay (the kernel delivers to the middle host's bridge), so frames
    for the far host reach userspace on both hops, and the best userspace overlay there
    is the fast sleeve: it carries them while status shows fastdp for direct traffic."""
    c = cluster(3)
    h1, h2, h3 = c.hosts
    h1.launch("--no-discovery")
    h2.launch("--no-discovery", h1.ip)
    h3.launch("--no-discovery", h2.ip)
    wait_for_mesh([h1, h3], peers=3, established=1, timeout=20)
    wait_for_mesh([h2], peers=3, established=2, timeout=20)
    wait_until(lambda: _on(h2, "fastdp", peers=2), timeout=30, message="both hops on fastdp")
    a = attached_container(h1, "a", "10.2.1.1/24")
    b = attached_container(h3, "b", "10.2.1.3/24")
    wait_reaches(a, "10.2.1.3", timeout=20)
    relayed = h2.report()["Router"]["DatapathStats"].get("relayed_bytes", 0)
    before = (_fast(h1)["SuperframesOut"], _fast(h2)["SuperframesOut"])
    tcp_transfer(a, b, "10.2.1.3", 16 << 20)
    stats = h2.report()["Router"]["DatapathStats"]
    assert stats.get("relayed_bytes", 0) - relayed >= 16 << 20, "h2 did not relay"
    assert _fast(h1)["SuperframesOut"] - before[0] >= 200, "first hop not on the fast sleeve"
    assert _fast(h2)["SuperframesOut"] - before[1] >= 200, "relayed hop not on the fast sleeve"
