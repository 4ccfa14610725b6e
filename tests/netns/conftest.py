"""Namespace tests: need root, `ip netns` and iptables/nft. Run serially.

Skipped where they cannot run, except under CI=true, where they fail (tests/conftest.py).
The `cluster` fixture comes from tests/conftest.py.
"""

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
