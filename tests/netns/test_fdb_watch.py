"""fastdp notices kernel drift from netlink notifications (issue 10): with the observing
period at its large safety-net value, only the watcher explains a repair within seconds.
Real kernel, harness namespaces (prefix ``fw``)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from weavenet.core.overlay.vxlan_plan import VxlanConfig, diff, plan
from weavenet.core.overlay.vxlan_watch import (
    DeviceIndexes,
    FdbGone,
    KernelEvent,
    LinkGone,
    LinkSeen,
    PortChanged,
)
from weavenet.dataplane import ensure_bridge, ensure_tap, kernel_watch, vxlan
from weavenet.harness import Cluster, Host, wait_until
from weavenet.harness.containers import attached_container, connections, wait_reaches
from weavenet.harness.mesh import wait_for_mesh
from weavenet.io.fastdp import OBSERVE_PERIOD

FAST = OBSERVE_PERIOD / 4  # a repair this soon was not the safety net's
PEER, PEER_IP, MAC = 7, "172.31.250.2", b"\x02\x00\x00\x00\x00\x07"


def _prefix() -> str:
    return "fw" + secrets.token_hex(2)


def _fdb(host: Host) -> str:
    return host.run(["bridge", "fdb", "show", "dev", "vxlan-6784"]).stdout


def _repairs(host: Host) -> int:
    return int(host.report()["Router"]["OverlayDiagnostics"]["fastdp"]["KernelRepairs"])


def _on_fastdp(host: Host) -> bool:
    return any(
        " fastdp " in f"{row} " and "established" in row for row in connections(host).splitlines()
    )


def _each_repair_follows_a_notification(log: str) -> bool:
    """Every repair came from a round the watcher asked for (its line comes first)."""
    lines = [line for line in log.splitlines() if "fastdp: " in line]
    repairs = [i for i, line in enumerate(lines) if "drifted from the plan; repaired:" in line]
    noticed = "fastdp: the kernel reports drift, observing it now:"
    return len(repairs) >= 3 and all(i > 0 and noticed in lines[i - 1] for i in repairs)


def _tap_isolated(host: Host) -> bool:
    return "isolated on" in host.run(["bridge", "-d", "link", "show", "dev", "weave-tap"]).stdout


def _timed_repair(check: Callable[[], bool], message: str) -> float:
    start = time.monotonic()
    wait_until(check, timeout=FAST, message=f"{message} within {FAST:g} s")
    return time.monotonic() - start


def test_lost_fdb_entry_device_and_tap_isolation_are_repaired_before_the_safety_net(
    cluster: Callable[..., Cluster],
) -> None:
    c = cluster(2, prefix=_prefix())
    h1, h2 = c.hosts
    h1.launch()
    h2.launch(h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=15)
    wait_until(lambda: _on_fastdp(h1) and _on_fastdp(h2), timeout=20, message="fastdp on both")
    a = attached_container(h1, "a", "10.2.1.1/24")
    attached_container(h2, "b", "10.2.1.2/24")
    wait_reaches(a, "10.2.1.2")
    wait_until(lambda: "self permanent" in _fdb(h1), timeout=15, message="a pinned MAC")
    assert "cannot watch the kernel's notifications" not in h1.log()
    entry = next(line for line in _fdb(h1).splitlines() if "self permanent" in line)
    mac, dst = entry.split()[0], entry.split()[2]

    h1.run(["bridge", "fdb", "del", mac, "dev", "vxlan-6784", "dst", dst, "self"])
    took = _timed_repair(lambda: entry in _fdb(h1), "fdb entry repaired")
    wait_until(lambda: _repairs(h1) >= 1, timeout=10, message="the repair counted")

    h1.run(["ip", "link", "del", "vxlan-6784"])
    took_device = _timed_repair(
        lambda: entry in _fdb(h1) and "master weave" in h1.run(["ip", "link"]).stdout,
        "VXLAN device re-created and re-attached",
    )
    wait_until(lambda: _repairs(h1) >= 2, timeout=10, message="both repairs counted")

    h1.run(["bridge", "link", "set", "dev", "weave-tap", "isolated", "off"])
    took_tap = _timed_repair(lambda: _tap_isolated(h1), "the TAP isolated again")
    wait_until(lambda: _repairs(h1) >= 3, timeout=10, message="three repairs counted")
    wait_reaches(a, "10.2.1.2")
    assert _each_repair_follows_a_notification(h1.log())
    assert max(took, took_device, took_tap) < FAST, (took, took_device, took_tap)


def _read_until(
    watch: kernel_watch.KernelWatch, wanted: KernelEvent, indexes: DeviceIndexes
) -> list[KernelEvent]:
    seen: list[KernelEvent] = []

    def arrived() -> bool:
        seen.extend(watch.read(indexes, CONFIG))
        return wanted in seen

    wait_until(arrived, timeout=10, message=f"{wanted} among the notifications")
    return seen


CONFIG = VxlanConfig("weave", "weave-tap", 1376, 6784)


def test_watcher_reports_our_deletions_and_nothing_of_others(
    cluster: Callable[..., Cluster],
) -> None:
    host = cluster(1, prefix=_prefix()).hosts[0]
    ensure_bridge("weave", netns=host.netns)
    ensure_tap("weave-tap", "weave", netns=host.netns)
    desired = plan(CONFIG, {PEER: PEER_IP}, [(MAC, PEER)])
    vxlan.apply(diff(desired, vxlan.observe(CONFIG, host.netns)[0]), CONFIG, host.netns)
    indexes = vxlan.observe(CONFIG, host.netns)[1]
    watch = kernel_watch.open_watch(host.netns)
    try:
        host.run(["ip", "link", "add", "fwbr0", "type", "bridge"])
        host.run(["ip", "link", "del", "fwbr0"])
        mac = "02:00:00:00:00:07"
        host.run(["bridge", "fdb", "del", mac, "dev", "vxlan-6784", "dst", PEER_IP, "self"])
        seen = _read_until(watch, FdbGone(mac, PEER_IP), indexes)
        host.run(["ip", "link", "del", "vxhb-6784"])
        seen += _read_until(watch, LinkGone(indexes.heartbeat or -1), indexes)
    finally:
        watch.close()
    ours = (indexes.data, indexes.heartbeat)
    about_us = [
        e
        for e in seen
        if isinstance(e, FdbGone)
        or (isinstance(e, LinkGone | LinkSeen | PortChanged) and e.index in ours)
    ]
    assert about_us == seen  # nothing about the other device, no RTM_NEWNEIGH
