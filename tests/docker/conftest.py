"""Docker tier: real dockerd and docker processes, one daemon per emulated host.

`make test-docker` installs Debian's docker.io and busybox-static first. Skipped where
Docker cannot run, except under CI=true, where it fails (tests/conftest.py).

Fixtures:
    docker_cluster(n_hosts=2, launch=True, launch_args=(), start_daemons=True)
        -> DockerCluster   (weavenet.harness.docker): a Cluster whose hosts each run a
        dockerd; with launch=True every host's router is started by the real `weave
        launch` inside the host's namespaces (h2.. peer with h1) and the mesh is complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import dump_logs, netns_unusable_reason, unavailable
from weavenet.harness import wait_for_mesh
from weavenet.harness.docker import DockerCluster, DockerHost, docker_unusable_reason

HERE = Path(__file__).resolve().parent
LOG_TAIL = 60


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.netns)
            item.add_marker(pytest.mark.docker)


@pytest.fixture(autouse=True)
def _docker_tier() -> None:
    reason = netns_unusable_reason() or docker_unusable_reason()
    if reason is not None:
        unavailable(reason)


def _dump_docker_logs(cluster: DockerCluster) -> None:
    dump_logs(cluster)
    for dh in cluster.docker_hosts:
        _dump_connections(dh)
    for dh in cluster.docker_hosts:
        try:
            lines = (dh.dir / "dockerd.log").read_text(errors="replace").splitlines()
        except OSError:
            continue
        print(f"===== {dh.name} dockerd.log, last {LOG_TAIL} lines =====")
        print("\n".join(lines[-LOG_TAIL:]))


def _dump_connections(dh: DockerHost) -> None:
    """The router's connections and targets (`weave status connections`): a target that
    is not being redialled shows there with its state and next retry time."""
    try:
        proc = dh.weave("status", "connections", check=False, timeout=10)
    except Exception as exc:  # a dump must not hide the test's own failure
        print(f"===== {dh.name} weave status connections: {exc} =====")
        return
    print(f"===== {dh.name} weave status connections (exit {proc.returncode}) =====")
    print(proc.stdout + proc.stderr)


@pytest.fixture
def docker_cluster(request: pytest.FixtureRequest) -> Iterator[Callable[..., DockerCluster]]:
    """Factory for DockerClusters, torn down (logs dumped on failure) after the test."""
    made: list[DockerCluster] = []

    def make(
        n_hosts: int = 2,
        launch: bool = True,
        launch_args: Sequence[str] = (),
        **kwargs: Any,
    ) -> DockerCluster:
        c = DockerCluster(n_hosts, **kwargs)
        made.append(c)
        c.start()
        if launch:
            first = c.docker_hosts[0]
            first.launch(*launch_args)
            for dh in c.docker_hosts[1:]:
                dh.launch(*launch_args, first.ip)
            wait_for_mesh(c.hosts, timeout=60)
        return c

    yield make
    rep = getattr(request.node, "rep_call", None)
    for c in made:
        if rep is not None and rep.failed:
            _dump_docker_logs(c)
        c.close()
