"""Suite-wide rules: under CI=true nothing may skip silently; shared namespace fixtures.

A tier that cannot run here (not root, no `ip netns`, no Go weaver, a missing tool) skips on a
developer's machine but FAILS under CI=true: a green CI run must mean every tier ran.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
from hypothesis import settings

from weavenet.harness import Cluster, random_prefix

# No per-example deadline: tests check behaviour, never speed (benchmarks do), and a busy
# machine (CI, parallel namespace tests) makes wall-clock deadlines fail at random.
settings.register_profile("weavenet", deadline=None)
settings.load_profile("weavenet")

LOG_TAIL = 80
NETNS_TOOLS = ("ip", "iptables", "nft")


def ci_strict() -> bool:
    """True under CI=true: a test that cannot run is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason`, or fail with it under CI=true."""
    if ci_strict():
        pytest.fail(f"{reason} (CI=true: a test tier that cannot run fails)", pytrace=False)
    pytest.skip(reason)


@functools.cache
def netns_unusable_reason() -> str | None:
    """Why namespace tests can't run here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in NETNS_TOOLS:
        if shutil.which(tool) is None:
            return f"needs {tool} (make deps installs it)"
    name = f"{random_prefix()}-probe"
    add = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if add.returncode != 0:
        return f"`ip netns add` does not work: {add.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the item; under CI=true turn any skip into a failure."""
    report = yield
    if ci_strict() and report.skipped and not hasattr(report, "wasxfail"):
        why = report.longrepr
        if isinstance(why, tuple) and len(why) == 3:
            why = f"{why[0]}:{why[1]}: {why[2]}"
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run everything: {why}"
    setattr(item, f"rep_{report.when}", report)
    return report


def dump_logs(cluster: Cluster) -> None:
    """Print each host's router log tail (pytest shows it for failed tests)."""
    for host in cluster.hosts:
        lines = host.log().splitlines()[-LOG_TAIL:]
        if lines:
            print(f"===== {host.name} ({host.ip}) weaver.log, last {len(lines)} lines =====")
            print("\n".join(lines))


@pytest.fixture
def cluster_class() -> type[Cluster]:
    """The Cluster type the `cluster` fixture builds (the interop tier overrides it)."""
    return Cluster


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest, cluster_class: type[Cluster]
) -> Iterator[Callable[..., Any]]:
    """Factory: `cluster(n_hosts, **kwargs)` builds a started Cluster, torn down after the test."""
    made: list[Cluster] = []

    def make(n_hosts: int = 3, **kwargs: Any) -> Cluster:
        c = cluster_class(n_hosts, **kwargs)
        made.append(c)
        c.start()
        return c

    yield make
    rep = getattr(request.node, "rep_call", None)
    for c in made:
        if rep is not None and rep.failed:
            dump_logs(c)
        c.close()
