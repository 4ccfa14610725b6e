"""Log lines in Weave's shape: ``INFO: 2026/11/29 19:04:20.609130 message``."""

from __future__ import annotations

import datetime
import logging
import sys

_LEVELS = {"DEBUG": "DEBU", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERRO", "CRITICAL": "FATA"}


class WeaveFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created)
        stamp = moment.strftime("%Y/%m/%d %H:%M:%S.%f")
        level = _LEVELS.get(record.levelname, record.levelname[:4])
        text = f"{level}: {stamp} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: str) -> None:
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
