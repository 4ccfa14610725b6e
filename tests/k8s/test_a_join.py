"""Issue 11 item 6: nodes joining one at a time (1, then 2, then 3) end in one ring, never
two; and the manifests are accepted by the API server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.k8s.support import Deployment, poll
from weavenet.harness.k8s_node import K8sNode

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def ring(report: dict[str, Any]) -> set[tuple[str, int, str, int]]:
    entries = (report.get("IPAM") or {}).get("Entries") or []
    return {(e["Token"], e["Size"], e["Peer"], e["Version"]) for e in entries}


def one_ring(dep: Deployment, nodes: list[K8sNode]) -> bool:
    """Every router: all the others as established peers, IPAM ready, and the same ring."""
    reports = [dep.report(n) for n in nodes]
    for r in reports:
        conns = [c for c in r["Router"].get("Connections") or [] if c["State"] == "established"]
        if len(r["Router"]["Peers"]) != len(nodes) or len(conns) != len(nodes) - 1:
            return False
        if r["IPAM"]["Status"] != "ready":
            return False
    rings = [ring(r) for r in reports]
    return bool(rings[0]) and all(x == rings[0] for x in rings)


def test_manifests_accepted(deployment: Deployment) -> None:
    kinds = sorted(obj["kind"] for obj in deployment.applied)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "Role", "RoleBinding",
                     "ServiceAccount"]  # fmt: skip
    ds = deployment.api.get("/apis/apps/v1/namespaces/kube-system/daemonsets/weave-net")
    assert ds["spec"]["template"]["spec"]["serviceAccountName"] == "weave-net"


def test_nodes_join_one_at_a_time_into_one_ring(deployment: Deployment) -> None:
    seeds = []
    for index in range(len(deployment.k8s.nodes)):
        deployment.join(index)
        nodes = deployment.started()
        poll(lambda nodes=nodes: one_ring(deployment, nodes), 120,
             f"{len(nodes)} nodes not in one ring", deployment.describe)  # fmt: skip
        config = deployment.api.get("/api/v1/namespaces/kube-system/configmaps/weave-net")
        seeds.append(config["data"]["seed"])
    first_peer = deployment.api.get(f"/api/v1/nodes/{deployment.k8s.nodes[0].name}")
    assert seeds == [first_peer["metadata"]["annotations"]["weave.works/peer-name"]] * 3
