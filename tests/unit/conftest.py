"""Fixtures shared by the unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop, not running: tests drive it with run_until_complete."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()
