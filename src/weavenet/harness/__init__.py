"""Network-namespace test harness for integration tests, benchmarks and the demo."""

from weavenet.harness.goweaver import (
    GoWeaver,
    HttpApi,
    InteropCluster,
    attach_go_container,
    go_weaver_unusable_reason,
)
from weavenet.harness.mesh import MeshView, established_addresses, mesh_view, wait_for_mesh
from weavenet.harness.netns import Cluster, Container, Host, Netns
from weavenet.harness.util import (
    CommandError,
    CommandTimeout,
    random_prefix,
    run_cmd,
    venv_bin,
    wait_until,
)

__all__ = [
    "Cluster",
    "CommandError",
    "CommandTimeout",
    "Container",
    "GoWeaver",
    "Host",
    "HttpApi",
    "InteropCluster",
    "MeshView",
    "Netns",
    "attach_go_container",
    "established_addresses",
    "go_weaver_unusable_reason",
    "mesh_view",
    "random_prefix",
    "run_cmd",
    "venv_bin",
    "wait_for_mesh",
    "wait_until",
]
