"""Interoperability tests: a real Go weaver (GO_WEAVER=PATH, `make interop`) beside ours.

They need what namespace tests need plus a runnable Go weaver 2.8.1 (libpcap0.8, unshare,
ethtool). Skipped where they cannot run, except under CI=true, where they fail.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LOG_TAIL, netns_unusable_reason, unavailable
from weavenet.harness import Cluster
from weavenet.harness.goweaver import (
    GO_WEAVER_ENV,
    GoWeaver,
    InteropCluster,
    default_go_weaver,
    go_weaver_unusable_reason,
)

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.netns)
            item.add_marker(pytest.mark.interop)


@functools.cache
def _go_weaver() -> tuple[Path, str | None]:
    binary = Path(os.environ.get(GO_WEAVER_ENV) or default_go_weaver()).resolve()
    return binary, netns_unusable_reason() or go_weaver_unusable_reason(binary)


@pytest.fixture(scope="session")
def go_weaver_bin() -> Path:
    """The Go weaver binary from $GO_WEAVER (default ../shared/anchor/weaver), known to run."""
    binary, reason = _go_weaver()
    if reason is not None:
        unavailable(reason)
    return binary


@pytest.fixture
def cluster_class() -> type[Cluster]:
    return InteropCluster


def _dump_go_logs(cluster: InteropCluster) -> None:
    for go in cluster.go_weavers:
        print(f"===== {go} Go weaver.log, last {LOG_TAIL} lines =====")
        print(go.log_tail(LOG_TAIL))


@pytest.fixture
def interop(
    request: pytest.FixtureRequest,
    cluster: Callable[..., Any],
    go_weaver_bin: Path,
) -> Iterator[Callable[..., InteropCluster]]:
    """Factory: `interop(n_hosts)` builds an InteropCluster; its Go weavers' logs are shown
    when the test fails, and they are stopped (by PID) before the namespaces go."""
    made: list[InteropCluster] = []

    def make(n_hosts: int = 2, **kwargs: Any) -> InteropCluster:
        c = cluster(n_hosts, **kwargs)
        assert isinstance(c, InteropCluster)
        made.append(c)
        return c

    yield make
    rep = getattr(request.node, "rep_call", None)
    for c in made:
        if rep is not None and rep.failed:
            _dump_go_logs(c)


@pytest.fixture
def go(interop: Callable[..., InteropCluster], go_weaver_bin: Path) -> Callable[..., GoWeaver]:
    """`go(cluster, host_index, **kwargs)`: a started Go weaver on that host, named
    a2:00:00:00:00:0N (N = host index) unless `name=` is given."""

    def start(cluster: InteropCluster, index: int, **kwargs: Any) -> GoWeaver:
        host = cluster.hosts[index]
        name = kwargs.pop("name", f"a2:00:00:00:00:{host.index:02x}")
        weaver = cluster.go_weaver(host, go_weaver_bin, name, **kwargs)
        weaver.start()
        return weaver

    return start
