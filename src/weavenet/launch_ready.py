"""`weave launch` learns that its forked router is up through a pipe, not by polling.

The CLI used to poll ``GET /status`` (0.05 s apart, growing to 0.5 s) until the router
answered: with 50 routers starting at once on two cores, each CLI spent ~0.07 CPU-s on
polls and saw the router up to half a second late. Now the forked child inherits the
write end of a pipe as descriptor ``READY_FD`` (named in ``$WEAVENET_READY_FD``) and
writes one byte once it serves everything (``notify_ready``); the CLI blocks on the read
end (``wait_ready``), then confirms with a single ``/status``. A router that dies first
closes the pipe (end of file), so the CLI learns of that at once too. A router started
any other way (``weaver`` by hand, ``WEAVENET_LAUNCH_EXEC=1``) has no such descriptor.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Callable
from enum import Enum

READY_ENV = "WEAVENET_READY_FD"
READY_FD = 3  # where the forked child keeps the write end (0-2 are its stdio)


class Ready(Enum):
    READY = "ready"  # the router wrote its byte
    CLOSED = "closed"  # end of file: the router exited (or closed it) without being ready
    TIMEOUT = "timeout"


def notify_ready() -> None:
    """In the router, once it serves: tell the launching CLI, if there is one."""
    fd = os.environ.pop(READY_ENV, None)
    if fd is None or not fd.isdigit():
        return
    with contextlib.suppress(OSError):
        os.write(int(fd), b"\n")
    with contextlib.suppress(OSError):
        os.close(int(fd))


def wait_ready(fd: int, timeout: float, tick: Callable[[], None], every: float = 1.0) -> Ready:
    """In the CLI: block on the read end until the router says so, it exits, or
    ``timeout``; ``tick`` runs every ``every`` seconds of waiting (progress dots)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([fd], [], [], min(every, left))
        if not readable:
            tick()
            continue
        return Ready.READY if os.read(fd, 1) else Ready.CLOSED
    return Ready.TIMEOUT
