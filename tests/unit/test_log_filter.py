"""The router's log handler drops pyroute2's chatter below WARNING, and its formatter
writes Weave's date as datetime would (io.logs)."""

from __future__ import annotations

import datetime
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
    for switch in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, switch, getattr(logging, switch))  # put back after
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


@pytest.mark.parametrize(
    "created",
    [
        1764876780.0,
        1764876780.5,
        1764876780.9999996,  # rounds up into the next second
        1764876780.0000005,  # a half microsecond: datetime rounds half to even
        1764876781.0000015,
        1700000000.123456,
        1798733167.8770747,
    ],
)
def test_the_stamp_is_datetimes_within_and_across_seconds(created: float) -> None:
    formatter = logs.WeaveFormatter()
    formatter.stamp(created - 0.25)  # a cached second from before
    expected = datetime.datetime.fromtimestamp(created).strftime("%Y/%m/%d %H:%M:%S.%f")
    assert formatter.stamp(created) == expected


def test_a_line_is_level_stamp_and_message(captured: io.StringIO) -> None:
    logging.getLogger("weavenet.mesh").info("->[%s]: connection added", "10.40.0.7:6783")
    (line,) = captured.getvalue().splitlines()
    level, day, moment, message = line.split(" ", 3)
    assert level == "INFO:" and message == "->[10.40.0.7:6783]: connection added"
    datetime.datetime.strptime(f"{day} {moment}", "%Y/%m/%d %H:%M:%S.%f")
