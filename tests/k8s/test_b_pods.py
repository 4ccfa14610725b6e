"""Issue 11 item 3: on the real 3-node cluster the DaemonSet is scheduled on every node, every
router finds the others from the API, busybox pods on each node get distinct addresses from
the ring and ping each other across nodes, and every node reports NetworkUnavailable=False."""

from __future__ import annotations

import ipaddress

import pytest

from tests.k8s.support import (
    Deployment,
    ping_from_pod,
    pod_manifest,
    poll,
    wait_pod_running,
)
from weavenet.harness.k8s_api import condition

pytestmark = [pytest.mark.netns, pytest.mark.slow]
IPALLOC_RANGE = ipaddress.ip_network("10.32.0.0/12")


def test_daemonset_scheduled_on_every_node(joined: Deployment) -> None:
    path = "/apis/apps/v1/namespaces/kube-system/daemonsets/weave-net"
    poll(lambda: joined.api.get(path)["status"].get("desiredNumberScheduled") == 3, 60,
         "DaemonSet weave-net not scheduled on 3 nodes")  # fmt: skip


def test_every_node_network_available(joined: Deployment) -> None:
    def conditions() -> list[tuple[str | None, str | None]]:
        nodes = [joined.api.get(f"/api/v1/nodes/{n.name}") for n in joined.k8s.nodes]
        return [(condition(n, "NetworkUnavailable"), condition(n, "Ready")) for n in nodes]

    poll(lambda: all(c == ("False", "True") for c in conditions()), 30,
         "NetworkUnavailable=False and Ready not on every node",
         lambda: conditions())  # fmt: skip


def test_routers_find_each_other_from_the_api(joined: Deployment) -> None:
    for node in joined.k8s.nodes:
        report = joined.report(node)
        targets = {t.rsplit(":", 1)[0] for t in report["Router"].get("Targets") or []}
        others = {n.host.ip for n in joined.k8s.nodes if n is not node}
        assert others <= targets, (node.name, targets)


def test_pods_get_distinct_addresses_and_ping_across_nodes(joined: Deployment) -> None:
    ns = joined.k8s.prefix
    names = [f"ping-{i}" for i in range(len(joined.k8s.nodes))]
    for name, node in zip(names, joined.k8s.nodes, strict=True):
        joined.api.create(pod_manifest(name, node.name, ns))
    pods = [wait_pod_running(joined, ns, name) for name in names]
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == len(ips), ips
    assert all(ipaddress.ip_address(ip) in IPALLOC_RANGE for ip in ips), ips
    for src_node, src in zip(joined.k8s.nodes, pods, strict=True):
        for dst_ip in ips:
            if dst_ip != src["status"]["podIP"]:
                assert ping_from_pod(src_node, src, dst_ip), (src_node.name, dst_ip)
