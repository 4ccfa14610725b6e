"""IPAM across real routers in namespaces (issue 6, acceptance 3, 4, 6 and 7): containers
attached without addresses get distinct addresses from one ring, partitions heal without
duplicates, a dead peer's space is taken over with rmpeer, reset hands space over, and a
wait for consensus is visible."""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

from weavenet.harness import Cluster, Container, Host, venv_bin, wait_until
from weavenet.harness.mesh import wait_for_mesh

UNIVERSE = ipaddress.IPv4Network("10.32.0.0/12")
ATTACH_TIMEOUT = 240.0


def _launch_consensus(hosts: Sequence[Host], quorum_of: int) -> None:
    first, *rest = hosts
    first.launch("--ipalloc-init", f"consensus={quorum_of}")
    for host in rest:
        host.launch("--ipalloc-init", f"consensus={quorum_of}", first.ip)
    wait_for_mesh(hosts, timeout=60)


def _ipam(host: Host) -> dict[str, Any]:
    section: dict[str, Any] = host.report()["IPAM"]
    return section


def _ring(host: Host) -> list[tuple[str, int, str, int]]:
    entries = _ipam(host).get("Entries") or []
    return [(e["Token"], e["Size"], e["Peer"], e["Version"]) for e in entries]


Ring = list[tuple[str, int, str, int]]


def _wait_same_ring(hosts: Sequence[Host], timeout: float = 60.0) -> Ring:
    def same() -> Ring | None:
        rings = [_ring(h) for h in hosts]
        return rings[0] if rings[0] and all(r == rings[0] for r in rings) else None

    ring = wait_until(
        same,
        timeout,
        interval=0.5,
        message="hosts did not agree on one ring",
        describe=lambda: {h.name: _ring(h) for h in hosts},
    )
    assert ring is not None
    return ring


def _attach_all(pairs: Sequence[tuple[Host, Container]], *args: str) -> list[str]:
    """`weave attach ARGS netns:C` for every (host, container) at once; their IPs."""
    weave = str(venv_bin() / "weave")
    procs = [
        host.popen(
            [weave, "attach", *args, f"netns:{ct.netns}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host, ct in pairs
    ]
    ips = []
    for proc, (host, ct) in zip(procs, pairs, strict=True):
        out, err = proc.communicate(timeout=ATTACH_TIMEOUT)
        assert proc.returncode == 0, f"attach {ct.netns} on {host.name} failed: {err}"
        ips.append(out.strip())
    return ips


def _ping_all(pairs: Sequence[tuple[Container, str]], batch: int = 25) -> list[str]:
    """Ping every (container, address) pair, `batch` at a time; the pairs that never answered."""
    failed = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        procs = [
            ct.host.popen(["ip", "netns", "exec", ct.netns, "ping", "-c", "3", "-i", "0.2",
                           "-W", "2", addr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for ct, addr in chunk
        ]  # fmt: skip
        for proc, (ct, addr) in zip(procs, chunk, strict=True):
            if proc.wait(timeout=30) != 0:
                failed.append(f"{ct.netns} -> {addr}")
    return failed


def _in_universe(ip: str) -> bool:
    return ipaddress.IPv4Address(ip) in UNIVERSE


def test_hundred_containers_attached_at_once_get_distinct_addresses(
    cluster: Callable[..., Cluster],
) -> None:
    c = cluster(3)
    hosts = c.hosts
    _launch_consensus(hosts, quorum_of=3)
    pairs = [(hosts[i % 3], hosts[i % 3].add_container(f"c{i}")) for i in range(100)]
    ips = _attach_all(pairs)
    assert all(len(ip.split()) == 1 and _in_universe(ip) for ip in ips), ips
    assert len(set(ips)) == 100, "duplicate addresses handed out"
    ring = _wait_same_ring(hosts)
    owners = {peer for _, _, peer, _ in ring}
    assert len(owners) == 3, f"the ring should be shared by the three peers: {ring}"
    shares = hosts[0].status("ipam").strip().splitlines()
    assert len(shares) == 3 and all("IPs (" in line for line in shares), shares
    assert {h.name for h in hosts} == {
        m.group(1) for line in shares if (m := re.search(r"\((h\d)\)", line))
    }
    ip_of = {ct.netns: ip for (_, ct), ip in zip(pairs, ips, strict=True)}
    first_on = {h.name: next(ct for hh, ct in pairs if hh is h) for h in hosts}
    checks = [
        (ct, ip_of[first_on[other.name].netns])
        for host, ct in pairs
        for other in hosts
        if other is not host
    ]
    assert _ping_all(checks) == []


def _partition(c: Cluster, host: Host, on: bool) -> None:
    action = "-I" if on else "-D"
    for direction in ("-s", "-d"):
        c.iptables(action, "FORWARD", direction, host.ip, "-j", "DROP")


def test_partition_allocate_on_both_sides_then_heal(cluster: Callable[..., Cluster]) -> None:
    c = cluster(3)
    h1, _, h3 = hosts = c.hosts
    _launch_consensus(hosts, quorum_of=3)
    h1.weave("prime", timeout=60)
    _wait_same_ring(hosts)
    ips = _attach_all([(h, h.add_container(f"before{h.index}")) for h in hosts])
    _partition(c, h3, on=True)
    try:
        pairs = [(h, h.add_container(f"p{h.index}x{i}")) for h in hosts for i in range(4)]
        ips += _attach_all(pairs)
    finally:
        _partition(c, h3, on=False)
    ips += _attach_all([(h, h.add_container(f"after{h.index}")) for h in hosts])
    assert len(ips) == len(set(ips)) == 18, f"duplicates after the partition: {sorted(ips)}"
    assert all(_in_universe(ip) for ip in ips)
    _wait_same_ring(hosts, timeout=90)


def _taken_over(output: str) -> int:
    match = re.search(r"(\d+) IPs taken over from", output)
    assert match, output
    return int(match.group(1))


def _first_block(token: str) -> str:
    return f"{token}/24"


def test_rmpeer_takes_over_a_dead_peer_and_reset_hands_space_over(
    cluster: Callable[..., Cluster],
) -> None:
    c = cluster(3)
    h1, h2, h3 = hosts = c.hosts
    _launch_consensus(hosts, quorum_of=3)
    # consensus may divide the range among only a quorum of the peers; an allocation on
    # each host makes every one of them own space (asking the others for some if need be)
    _attach_all([(h, h.add_container(f"own{h.index}")) for h in hosts])
    ring = _wait_same_ring(hosts)
    names = {h.name: h.report()["Router"]["Name"] for h in hosts}
    h3_ranges = [(token, size) for token, size, peer, _ in ring if peer == names["h3"]]
    h2_ranges = [(token, size) for token, size, peer, _ in ring if peer == names["h2"]]
    assert h3_ranges and h2_ranges

    h3.stop()
    wait_until(lambda: "unreachable!" in h1.status("ipam"), 60, message="h3 unreachable")
    taken = _taken_over(h1.weave("rmpeer", names["h3"]).stdout)
    assert taken == sum(size for _, size in h3_ranges)
    for host in (h1, h2):
        wait_until(
            lambda host=host: "unreachable!" not in host.status("ipam"),
            30,
            message=f"{host.name} still lists an unreachable peer",
        )
    block = _first_block(h3_ranges[0][0])
    ip = h1.weave("attach", f"net:{block}", f"netns:{h1.add_container('x3').netns}").stdout
    assert ipaddress.IPv4Address(ip.strip()) in ipaddress.IPv4Network(block)

    h2.weave("reset")
    wait_until(
        lambda: all(peer == names["h1"] for _, _, peer, _ in _ring(h1)),
        30,
        message="h1 did not receive h2's space on reset",
        describe=lambda: _ring(h1),
    )
    block = _first_block(h2_ranges[0][0])
    ip = h1.weave("attach", f"net:{block}", f"netns:{h1.add_container('x2').netns}").stdout
    assert ipaddress.IPv4Address(ip.strip()) in ipaddress.IPv4Network(block)


def test_waiting_for_consensus_is_visible_and_times_out(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, h2 = c.hosts  # h2 never starts a router: consensus cannot be reached
    h1.launch("--ipalloc-init", "consensus=3", h2.ip)
    ct = h1.add_container("a")
    result = h1.weave("attach", "--timeout", "5", f"netns:{ct.netns}", check=False, timeout=60)
    assert result.returncode != 0
    assert "awaiting consensus (quorum: 2, known: 1)" in result.stderr
    assert f"peers not connected yet: {h2.ip}:6783" in result.stderr
    assert "Waiting" in result.stderr and "timed out" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 4, "progress must not flood the terminal"
    assert "awaiting consensus (quorum: 2, known: 1)" in h1.status("ipam")
    assert re.search(r"Status: awaiting consensus \(quorum: 2, known: 1\)", h1.status())
    wait_until(
        lambda: not _ipam(h1).get("PendingAllocates"),
        15,
        message="the timed-out allocation is still pending on the router",
        describe=lambda: _ipam(h1).get("PendingAllocates"),
    )
