"""The ``weave`` console script: the collector is off for the CLI's short life, and the
CLI ends without tearing its interpreter down.

``weave`` is short-lived and its start-up is mostly imports, which the cyclic collector
would rescan over and over (about a fifth of the import time); ``weave launch`` forks
the router from this process, and the router turns the collector back on once it has
started (daemon._tune_gc). Imported here first, so that the CLI's own imports are covered.

At exit the interpreter would free every module and object one by one: with the
router's code imported that is ~50 ms of CPU, a third of a `weave launch`, spent on
memory the kernel frees anyway. So once the command is done, ``finish`` flushes the
output, runs the atexit handlers and leaves with ``os._exit``; only if the command left
a thread running does it exit the usual way, which waits for it.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from typing import NoReturn

# what Python exits with when flushing stdout fails at the end (e.g. `weave status | head`)
FLUSH_FAILED = 120


def main() -> None:
    gc.disable()
    from weavenet.cli.main import main as weave

    try:
        weave()
    except SystemExit as exc:
        finish(exc.code)
    finish(0)


def finish(code: object) -> NoReturn:
    """Exit with ``code`` (as ``sys.exit`` reads it) without the interpreter's teardown."""
    if threading.active_count() > 1:
        raise SystemExit(code)  # the usual way waits for non-daemon threads
    status = _exit_status(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or FLUSH_FAILED
    os._exit(status)


def _exit_status(code: object) -> int:
    """``sys.exit``'s rules: None is 0, an int is itself, anything else is printed, 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":  # `python -m weavenet.cli.entry`: as the `weave` script
    main()
