"""The router's log handler drops pyroute2's chatter below WARNING (io.logs)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from weavenet.io import logs


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    out = io.StringIO()
    monkeypatch.setattr(logs.sys, "stderr", out)
    logs.setup_logging("debug")
    yield out
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_pyroute2_debug_is_dropped_even_after_it_resets_its_level(captured: io.StringIO) -> None:
    netlink = logging.getLogger("pyroute2.netlink.core")
    logging.getLogger("pyroute2").setLevel(0)  # what importing pyroute2 does
    netlink.debug("SOCK_DGRAM enqueue 36 bytes")
    netlink.info("some info")
    netlink.warning("netlink trouble")
    logging.getLogger("weavenet.plugin").debug("[plugin] Join took 0.1 ms")
    lines = captured.getvalue().splitlines()
    assert [line.split(" ", 3)[3] for line in lines] == [
        "netlink trouble", "[plugin] Join took 0.1 ms"]  # fmt: skip
    assert lines[0].startswith("WARN: ") and lines[1].startswith("DEBU: ")
