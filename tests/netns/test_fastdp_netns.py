"""fastdp, the kernel VXLAN datapath, and the overlay switch in front of it: real routers
in harness namespaces (issue 8, acceptance 1, 2, 5 and 6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from weavenet.harness import Cluster, Container, Host, wait_until
from weavenet.harness.containers import attached_container, connections, wait_reaches
from weavenet.harness.mesh import wait_for_mesh
from weavenet.harness.transfer import tcp_transfer

HUNDRED_MB = 100 << 20


def _stats(host: Host) -> dict[str, Any]:
    stats: dict[str, Any] = host.report()["Router"].get("DatapathStats") or {}
    return stats


def _on_fastdp(host: Host, peers: int = 1) -> bool:
    lines = connections(host).splitlines()
    return sum(" fastdp " in f"{line} " and "established" in line for line in lines) >= peers


def _two_hosts(c: Cluster, *args: str) -> tuple[Host, Host, Container, Container]:
    h1, h2 = c.hosts
    h1.launch(*args)
    h2.launch(*args, h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=15)
    wait_until(lambda: _on_fastdp(h1) and _on_fastdp(h2), timeout=20, message="fastdp on both")
    a = attached_container(h1, "a", "10.2.1.1/24")
    b = attached_container(h2, "b", "10.2.1.2/24")
    wait_reaches(a, "10.2.1.2")
    return h1, h2, a, b


def test_two_hosts_pick_fastdp_and_carry_100_mb(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, h2, a, b = _two_hosts(c)
    before = _stats(h1).get("forwarded_bytes", 0)
    tcp_transfer(a, b, "10.2.1.2", HUNDRED_MB)
    assert _on_fastdp(h1) and _on_fastdp(h2), connections(h1)
    through_userspace = _stats(h1).get("forwarded_bytes", 0) - before
    assert through_userspace < HUNDRED_MB // 10, f"{through_userspace} bytes took the sleeve"
    for host in (h1, h2):  # the kernel read back as planned: no repair of untouched state
        assert host.report()["Router"]["OverlayDiagnostics"]["fastdp"]["KernelRepairs"] == 0
        assert "drifted from the plan" not in host.log()


def _block(c: Cluster, port: int, on: bool) -> None:
    action = "-I" if on else "-D"
    c.iptables(action, "FORWARD", "-p", "udp", "--dport", str(port), "-j", "DROP")


def test_blocked_vxlan_falls_back_to_sleeve_and_comes_back(
    cluster: Callable[..., Cluster],
) -> None:
    c = cluster(2)
    h1, h2, a, b = _two_hosts(c, "--no-fast-sleeve")  # the fast sleeve: its own test file
    _block(c, 6784, True)
    wait_until(
        lambda: "sleeve" in connections(h1) and "reason=" in connections(h1),
        timeout=30,
        message="fallback to the sleeve within 30 s",
    )
    assert "fastdp: no heartbeat ack" in connections(h1), connections(h1)
    wait_reaches(a, "10.2.1.2", timeout=15)
    before = _stats(h1).get("forwarded_bytes", 0)
    tcp_transfer(a, b, "10.2.1.2", 4 << 20)
    assert _stats(h1).get("forwarded_bytes", 0) - before >= 4 << 20, "not on the sleeve"
    _block(c, 6784, False)
    wait_until(lambda: _on_fastdp(h1) and _on_fastdp(h2), timeout=60, message="back on fastdp")
    assert "overlay_switch ->" in h1.log() and "using fastdp" in h1.log()
    tcp_transfer(a, b, "10.2.1.2", 4 << 20)


def _fdb(host: Host) -> str:
    return host.run(["bridge", "fdb", "show", "dev", "vxlan-6784"]).stdout


def _ipv6_off(host: Host, dev: str) -> bool:
    """IPv6 disabled on ``dev``: no link-local address, no MLD reports or solicitations
    of its own flooded through the bridge and along the mesh's broadcast trees."""
    sysctl = host.run(["cat", f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"]).stdout.strip()
    return sysctl == "1" and "inet6" not in host.run(["ip", "-6", "addr", "show", dev]).stdout


def test_deleted_vxlan_device_and_fdb_entry_are_repaired(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, _h2, a, _b = _two_hosts(c)
    assert all(_ipv6_off(h1, dev) for dev in ("weave", "weave-tap", "vxlan-6784", "vxhb-6784"))
    wait_until(lambda: "self permanent" in _fdb(h1), timeout=15, message="a pinned MAC")
    entry = next(line for line in _fdb(h1).splitlines() if "self permanent" in line)
    mac, dst = entry.split()[0], entry.split()[2]
    h1.run(["bridge", "fdb", "del", mac, "dev", "vxlan-6784", "dst", dst, "self"])
    wait_until(lambda: entry in _fdb(h1), timeout=15, message="fdb entry repaired")
    h1.run(["ip", "link", "del", "vxlan-6784"])
    wait_until(
        lambda: entry in _fdb(h1) and "master weave" in h1.run(["ip", "link"]).stdout,
        timeout=15,
        message="VXLAN device re-created and re-attached",
    )
    wait_reaches(a, "10.2.1.2")
    assert "drifted from the plan" in h1.log()
    assert _ipv6_off(h1, "vxlan-6784"), "the re-created device has IPv6 again"
    diagnostics = h1.report()["Router"]["OverlayDiagnostics"]["fastdp"]
    assert diagnostics["KernelRepairs"] >= 2, diagnostics


def test_chain_relays_through_the_middle_host(cluster: Callable[..., Cluster]) -> None:
    c = cluster(3)
    h1, h2, h3 = c.hosts
    h1.launch("--no-discovery")
    h2.launch("--no-discovery", h1.ip)
    h3.launch("--no-discovery", h2.ip)
    wait_for_mesh([h1, h3], peers=3, established=1, timeout=20)
    wait_for_mesh([h2], peers=3, established=2, timeout=20)
    wait_until(lambda: _on_fastdp(h2, peers=2), timeout=20, message="both hops on fastdp")
    a = attached_container(h1, "a", "10.2.1.1/24")
    m = attached_container(h2, "m", "10.2.1.2/24")
    b = attached_container(h3, "b", "10.2.1.3/24")
    wait_reaches(a, "10.2.1.3", timeout=20)
    tcp_transfer(a, b, "10.2.1.3", 4 << 20)
    assert _stats(h2).get("relayed_bytes", 0) >= 4 << 20, "h2 did not relay"
    wait_reaches(a, "10.2.1.2")
    before = _stats(h1).get("forwarded_bytes", 0)
    tcp_transfer(a, m, "10.2.1.2", 16 << 20)
    assert _stats(h1).get("forwarded_bytes", 0) - before < 4 << 20, "direct hop not on fastdp"


def test_an_mtu_the_underlay_cannot_carry_fails_the_launch(
    cluster: Callable[..., Cluster],
) -> None:
    c = cluster(1)
    h1 = c.hosts[0]
    h1.run(["ip", "link", "set", "eth0", "mtu", "1400"])
    failed = h1.launch(check=False)
    said = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "--mtu 1376 does not fit the underlay: eth0 has MTU 1400" in said, said
    assert "use --mtu 1350 or less" in said
    h1.launch("--mtu", "1350")
    wait_until(lambda: "mtu 1350" in h1.run(["ip", "link", "show", "vxlan-6784"]).stdout,
               timeout=15, message="VXLAN device with MTU 1350")  # fmt: skip
