"""Log lines in Weave's shape: ``INFO: 2026/11/29 19:04:20.609130 message``.

A converging router logs ~7 lines per connection (accepted, ready, added, established,
the overlay chosen): 700 lines at 100 peers, each ~17 us of CPU through the logging
module. Two thirds of that went on what these lines never show: the caller's frame
looked up (file and line), the thread and process named, and the date formatted anew for
every line. So the records skip those (the logging HOWTO's "Optimization" switches) and
the formatter reuses the date part within a second.
"""

from __future__ import annotations

import logging
import math
import sys
import time

_LEVELS = {"DEBUG": "DEBU", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERRO", "CRITICAL": "FATA"}


class WeaveFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._date = ""

    def stamp(self, created: float) -> str:
        """``created`` (a time.time()) as local ``%Y/%m/%d %H:%M:%S.%f``."""
        fraction, whole = math.modf(created)
        micro = round(fraction * 1e6)  # as datetime.fromtimestamp rounds
        second = int(whole) + micro // 1_000_000
        if second != self._second:
            self._second = second
            self._date = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(second))
        return f"{self._date}.{micro % 1_000_000:06d}"

    def format(self, record: logging.LogRecord) -> str:
        level = _LEVELS.get(record.levelname, record.levelname[:4])
        text = f"{level}: {self.stamp(record.created)} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: str) -> None:
    logging._srcfile = None  # no caller frame lookup per record
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(WeaveFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    handler.addFilter(_quiet_pyroute2)


def _quiet_pyroute2(record: logging.LogRecord) -> bool:
    """Drop pyroute2's debug and info lines: it logs every netlink message, tens of lines
    per request, which swamp --log-level=debug and slow each netlink call. A filter, not
    a logger level: importing pyroute2 (lazily, after this set-up) resets its level."""
    return record.levelno >= logging.WARNING or not record.name.startswith("pyroute2")
