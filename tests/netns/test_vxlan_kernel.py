"""fastdp's kernel verbs against a real kernel, in a harness host namespace: what
`vxlan.apply` makes, `vxlan.observe` reads back as planned (a round that then finds a
difference would "repair" untouched state every OBSERVE_PERIOD)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from weavenet.core.overlay.vxlan_plan import VxlanConfig, diff, plan
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
