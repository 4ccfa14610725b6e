"""Run Python callables with their sockets inside a named network namespace.

setns(2) with CLONE_NEWNET changes only the calling thread's namespace, so a one-thread
executor that enters the namespace once gives the test process (which stays in the root
namespace) sockets in a namespace we created, without configuring anything in the root one.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def enter_netns(netns: str) -> None:
    """Move the calling thread (only it) into network namespace /run/netns/NETNS."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {netns}: {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsThread:
    """`call(fn, *args)` runs `fn` in a thread that lives in network namespace `netns`."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._pool = ThreadPoolExecutor(
            1, f"netns-{netns}", initializer=enter_netns, initargs=(netns,)
        )

    def call(self, fn: Callable[..., T], *args: object, timeout: float = 60.0) -> T:
        return self._pool.submit(fn, *args).result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
