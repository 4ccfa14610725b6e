"""The router's pid file in its state directory: how ``weave stop`` finds it."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from weavenet.core.errors import ConfigError


def read_pid(path: Path) -> int | None:
    """The pid recorded in ``path`` if that process is alive, else None."""
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


class PidFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> PidFile:
        other = read_pid(self.path)
        if other is not None and other != os.getpid():
            raise ConfigError(
                f"weave is already running (pid {other}); you can stop it with 'weave stop'."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{os.getpid()}\n")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if read_pid(self.path) == os.getpid():
            self.path.unlink(missing_ok=True)
