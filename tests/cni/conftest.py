"""CNI tier (`make test-cni`): the plugins against real routers in namespaces, and real
runtimes (podman, containerd's ctr) using them. Needs root and `ip netns`; the runtime
tests also need their tools (make test-cni installs them). Skips where it cannot run,
fails under CI=true (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import netns_unusable_reason, unavailable

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.netns)


@pytest.fixture(autouse=True)
def _netns_tier() -> None:
    reason = netns_unusable_reason()
    if reason is not None:
        unavailable(reason)
