"""Issue 11 items 5 and 4, last in the tier because they take nodes down.

Item 5: a pod's sandbox killed while kubelet is stopped (so no CNI DEL ever comes): its
address is freed by the router's collector (containerd source) within 2 minutes.
Item 4: a node deleted (kubelet stopped, router gone, Node object deleted): within 60 s its
ranges are owned by one live node, no peer in `status ipam` is unreachable, the reclaim ran
once in the whole cluster (the agents' counters) although both live agents saw the deletion
at the same moment (one watch event each), and the space can be used (a claim of an address
in a reclaimed range succeeds, a new pod runs).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from tests.k8s.support import Deployment, pod_manifest, poll, wait_pod_running
from weavenet.harness.k8s_node import K8sNode

pytestmark = [pytest.mark.netns, pytest.mark.slow]
RECLAIMS = "weavenet_k8s_reclaims_total"


def owned_ips(dep: Deployment, node: K8sNode) -> set[str]:
    """Addresses the router of `node` has allocated (to any container)."""
    owned = json.loads(dep.http_get(node, "http://127.0.0.1:6784/ip"))["owned"] or []
    return {addr.split("/")[0] for entry in owned for addr in entry["addrs"]}


def test_killed_sandbox_address_freed_without_del(joined: Deployment) -> None:
    ns, node = joined.k8s.prefix, joined.k8s.nodes[0]
    pod = wait_pod_running(joined, ns, _create(joined, "gc-victim", node.name))
    ip = pod["status"]["podIP"]
    assert ip in owned_ips(joined, node)
    node.stop_kubelet()
    try:
        for pid in node.task_pids():  # the pod's containers and its sandbox, SIGKILLed
            node.ctr("tasks", "kill", "-s", "SIGKILL", "-a", _task_of(node, pid), check=False)
        poll(lambda: ip not in owned_ips(joined, node), 120,
             f"address {ip} of the killed sandbox not freed", joined.describe)  # fmt: skip
    finally:
        node.start_kubelet()
        joined.k8s.wait_ready(node.name)
    joined.api.delete(f"/api/v1/namespaces/{ns}/pods/gc-victim")


def _create(dep: Deployment, name: str, node: str) -> str:
    dep.api.create(pod_manifest(name, node, dep.k8s.prefix))
    return name


def _task_of(node: K8sNode, pid: int) -> str:
    for line in node.ctr("tasks", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[1] == str(pid):
            return fields[0]
    return ""


def ring_entries(dep: Deployment, node: K8sNode) -> list[dict[str, Any]]:
    return list((dep.report(node).get("IPAM") or {}).get("Entries") or [])


def test_deleted_node_reclaimed_once_by_one_live_node(joined: Deployment) -> None:
    gone, live = joined.k8s.nodes[2], joined.k8s.nodes[:2]
    gone_peer = joined.report(gone)["Router"]["Name"]
    _ = wait_pod_running(joined, joined.k8s.prefix, _create(joined, "on-gone", gone.name))
    gone_ranges = [e for e in ring_entries(joined, live[0]) if e["Peer"] == gone_peer]
    assert gone_ranges, "the node to delete owns no range: nothing would be reclaimed"
    before = sum(joined.agent_metric(n, RECLAIMS) for n in live)

    gone.stop_kubelet()
    joined.stop_agent(gone)
    gone.stop()
    joined.api.delete(f"/api/v1/nodes/{gone.name}")

    def reclaimed() -> bool:
        for node in live:
            entries = ring_entries(joined, node)
            if any(e["Peer"] == gone_peer or not e["IsKnownPeer"] for e in entries):
                return False
        return True

    poll(reclaimed, 60, "ranges of the deleted node not reclaimed", joined.describe)
    status = live[0].host.weave("status", "ipam").stdout
    assert "unreachable" not in status, status
    owners = {e["Peer"] for e in ring_entries(joined, live[0])
              if e["Token"] in {g["Token"] for g in gone_ranges}}  # fmt: skip
    assert len(owners) == 1, owners
    counts = [joined.agent_metric(n, RECLAIMS) for n in live]
    assert sum(counts) - before == 1, counts
    _use_reclaimed_space(joined, live, owners.pop(), gone_ranges)


def _use_reclaimed_space(
    dep: Deployment, live: list[K8sNode], owner: str, ranges: list[dict[str, Any]]
) -> None:
    heir = next(n for n in live if dep.report(n)["Router"]["Name"] == owner)
    addr = ipaddress.ip_address(ranges[0]["Token"]) + 1
    dep.in_node(heir).call(_claim, f"http://127.0.0.1:6784/ip/k8-claim/{addr}/12")
    assert str(addr) in owned_ips(dep, heir)
    pod = wait_pod_running(dep, dep.k8s.prefix, _create(dep, "after-reclaim", heir.name))
    assert pod["status"]["podIP"]


def _claim(url: str) -> None:
    import urllib.request

    req = urllib.request.Request(url, method="PUT")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204  # claimed (an error is an HTTPError)
