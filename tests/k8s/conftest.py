"""One real cluster for the whole k8s tier (it takes a minute or more to start): the tests
run in file order, joining nodes one at a time first (test_a_join) and deleting one last
(test_c_reclaim)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import unavailable
from tests.k8s.support import Deployment
from weavenet.harness.k8s import K8sCluster, missing_reason


@pytest.fixture(scope="session")
def k8s_cluster() -> Iterator[K8sCluster]:
    reason = missing_reason()
    if reason:
        unavailable(reason)
    with K8sCluster(3) as k8s:
        yield k8s


@pytest.fixture(scope="session")
def deployment(k8s_cluster: K8sCluster) -> Iterator[Deployment]:
    dep = Deployment(k8s_cluster)
    dep.api.create({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": k8s_cluster.prefix}})  # fmt: skip
    yield dep
    dep.close()


@pytest.fixture
def joined(deployment: Deployment) -> Deployment:
    """Every node up with its agent (whatever tests ran before)."""
    for index, node in enumerate(deployment.k8s.nodes):
        if node.name not in deployment.agents and node.kubelet is None:
            deployment.join(index)
    return deployment
