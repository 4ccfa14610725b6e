"""Namespace tests: need root and working `ip netns`; skipped otherwise. Run serially."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from weavenet.harness import Cluster, random_prefix

HERE = Path(__file__).resolve().parent
LOG_TAIL = 80


@functools.cache
def netns_unusable_reason() -> str | None:
    """Why namespace tests can't run here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    name = f"{random_prefix()}-probe"
    add = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if add.returncode != 0:
        return f"`ip netns add` does not work: {add.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in Path(str(item.path)).resolve().parents:
            continue
        item.add_marker(pytest.mark.netns)
        reason = netns_unusable_reason()
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _dump_logs(cluster: Cluster) -> None:
    """Print each host's router log tail (shown by pytest for failed tests)."""
    for host in cluster.hosts:
        lines = host.log().splitlines()[-LOG_TAIL:]
        print(f"===== {host.name} ({host.ip}) weaver.log, last {len(lines)} lines =====")
        print("\n".join(lines))


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[Callable[..., Cluster]]:
    """Factory: `cluster(n_hosts, **kwargs)` builds a started Cluster, torn down after the test."""
    made: list[Cluster] = []

    def make(n_hosts: int = 3, **kwargs: Any) -> Cluster:
        c = Cluster(n_hosts, **kwargs)
        made.append(c)
        c.start()
        return c

    yield make
    rep = getattr(request.node, "rep_call", None)
    for c in made:
        if rep is not None and rep.failed:
            _dump_logs(c)
        c.close()
