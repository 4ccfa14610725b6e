"""fastdp's kernel verbs against a real kernel, in a harness host namespace: what
`vxlan.apply` makes, `vxlan.observe` reads back as planned (a round that then finds a
difference would "repair" untouched state every OBSERVE_PERIOD)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable

from weavenet.core.overlay.vxlan_plan import AddPin, VxlanConfig, diff, plan
from weavenet.dataplane import ensure_bridge, ensure_tap, vxlan
from weavenet.harness import Cluster

PEER, PEER_IP, MAC = 7, "172.31.250.2", b"\x02\x00\x00\x00\x00\x07"


def test_applied_plan_is_observed_as_planned(cluster: Callable[..., Cluster]) -> None:
    netns = cluster(1).hosts[0].netns
    ensure_bridge("weave", netns=netns)
    ensure_tap("weave-tap", "weave", netns=netns)
    config = VxlanConfig("weave", "weave-tap", 1376, 6784)
    desired = plan(config, {PEER: PEER_IP}, [(MAC, PEER)])
    before, indexes = vxlan.observe(config, netns)
    assert before.data is None and indexes.data is None and indexes.heartbeat is None
    ops = diff(desired, before)
    assert ops
    created = vxlan.apply(ops, config, netns)
    after, indexes = vxlan.observe(config, netns)
    assert diff(desired, after) == []
    assert after.data is not None and after.data.bridge == "weave" and after.data.isolated
    assert after.tap_isolated and after.heartbeat is not None and after.heartbeat.bridge is None
    assert ("02:00:00:00:00:07", PEER_IP, True) in after.fdb
    kernel = _link_indexes(netns)
    assert (indexes.data, indexes.heartbeat, indexes.bridge) == (
        kernel["vxlan-6784"], kernel["vxhb-6784"], kernel["weave"],
    )  # fmt: skip
    assert created == {"vxlan-6784": kernel["vxlan-6784"], "vxhb-6784": kernel["vxhb-6784"]}


def _link_indexes(netns: str) -> dict[str, int]:
    """`ip -o link` in `netns`: name -> ifindex."""
    out = subprocess.run(["ip", "-n", netns, "-o", "link"], capture_output=True, text=True).stdout
    rows = (line.split(": ") for line in out.splitlines())
    return {row[1].split("@")[0]: int(row[0]) for row in rows}


def test_a_pin_moves_the_macs_entry_from_another_peer(cluster: Callable[..., Cluster]) -> None:
    """A pin is two ``replace`` calls and nothing else: a unicast MAC has one remote in
    the kernel (a second ``append`` is ignored), which replace rewrites. If a kernel ever
    kept two, the first assertion says so."""
    netns = cluster(1, prefix="fw" + secrets.token_hex(2)).hosts[0].netns
    ensure_bridge("weave", netns=netns)
    ensure_tap("weave-tap", "weave", netns=netns)
    config = VxlanConfig("weave", "weave-tap", 1376, 6784)
    vxlan.apply(diff(plan(config, {}, []), vxlan.observe(config, netns)[0]), config, netns)
    mac, other = "02:00:00:00:00:07", "02:00:00:00:00:08"
    for dst in ("172.31.250.8", "172.31.250.9"):
        _bridge(netns, "append", mac, "dst", dst)
    _bridge(netns, "add", other, "dst", "172.31.250.9", "dynamic")  # as the kernel learns
    held = vxlan.observe(config, netns)[0].fdb
    assert {(m, ip) for m, ip, _ in held} == {(mac, "172.31.250.8"), (other, "172.31.250.9")}
    vxlan.apply(
        [AddPin(mac, PEER_IP), AddPin(other, "172.31.250.8"), AddPin(other, PEER_IP)],
        config,
        netns,
    )
    fdb = vxlan.observe(config, netns)[0].fdb
    assert fdb == {(mac, PEER_IP, True), (other, PEER_IP, True)}, fdb


def _bridge(netns: str, verb: str, mac: str, *args: str) -> None:
    cmd = ["bridge", "-n", netns, "fdb", verb, mac, "dev", "vxlan-6784", *args, "self"]
    subprocess.run(cmd, check=True, capture_output=True)
