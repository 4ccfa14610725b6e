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
