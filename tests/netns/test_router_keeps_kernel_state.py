"""A running router puts back what others remove: its bridge (with its ports and exposed
addresses) and its firewall table."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from weavenet.dataplane import (
    Exposed,
    FirewallState,
    bridge_addresses,
    bridge_exists,
    firewall_intact,
)
from weavenet.harness import Cluster, Host, wait_until
from weavenet.harness.containers import attached_container

IF = ipaddress.IPv4Interface


def _attach(host: Host, name: str, cidr: str) -> None:
    attached_container(host, name, cidr)


def test_exposed_subnet_rules_come_back_after_a_flush(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    h1.launch()
    _attach(h1, "c1", "10.2.1.1/24")
    _attach(h1, "c3", "10.2.2.1/24")
    assert h1.weave("expose", "10.2.1.254/24").stdout == "10.2.1.254\n"
    state = FirewallState("weave", (Exposed(IF("10.2.1.254/24")),))
    assert firewall_intact(state, netns=h1.netns)
    wait_until(lambda: h1.ping("10.2.1.1", timeout=1.0), timeout=10, message="host reaches c1")
    assert not h1.ping("10.2.2.1", timeout=1.0), "only the exposed subnet is reachable"
    assert "re-applying" not in h1.log()
    h1.run(["nft", "flush", "ruleset"])  # (no check that it is gone: the router may be quicker)
    wait_until(lambda: "re-applying" in h1.log(), timeout=15, message="the flush noticed")
    wait_until(lambda: firewall_intact(state, netns=h1.netns), timeout=15, message="re-applied")


def test_a_deleted_bridge_is_recreated_with_its_ports(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    h1.launch()
    _attach(h1, "c1", "10.2.1.1/24")
    _attach(h1, "c2", "10.2.1.2/24")
    c1 = h1.containers["c1"]
    wait_until(lambda: c1.ping("10.2.1.2", timeout=1.0), timeout=10, message="c1 reaches c2")
    assert "re-created" not in h1.log()
    h1.run(["ip", "link", "del", "weave"])  # (no check that it is gone: the router may be quicker)
    wait_until(lambda: "re-created" in h1.log(), timeout=15, message="the re-creation logged")
    assert bridge_exists("weave", netns=h1.netns)
    wait_until(lambda: c1.ping("10.2.1.2", timeout=1.0), timeout=10, message="ports re-attached")


def test_a_recreated_bridge_gets_its_exposed_addresses_back(
    cluster: Callable[..., Cluster],
) -> None:
    h1 = cluster(1).hosts[0]
    h1.launch()
    _attach(h1, "c1", "10.2.1.1/24")
    h1.weave("expose", "10.2.1.254/24")
    wait_until(lambda: h1.ping("10.2.1.1", timeout=1.0), timeout=10, message="host reaches c1")
    h1.run(["ip", "link", "del", "weave"])

    def exposed_again() -> bool:
        return bridge_addresses("weave", netns=h1.netns)[1] == [IF("10.2.1.254/24")]

    wait_until(exposed_again, timeout=15, message="expose address back on the bridge")
    wait_until(lambda: "Re-exposing 10.2.1.254/24" in h1.log(), timeout=10, message="logged")
    wait_until(lambda: h1.ping("10.2.1.1", timeout=1.0), timeout=10, message="host reaches c1")
