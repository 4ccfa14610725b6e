"""Mesh TCP input fed to the core in turns, so that the router answers while it converges.

A converging router has dozens of mesh sockets with data at once. Fed as each socket's
callback runs, one loop iteration does all their work (tens of ms of CPU with a mesh of
100) before the HTTP request or DNS query that became ready alongside them; on a starved
machine that is seconds. Here a socket's callback only queues its bytes; one step feeds
queued connections, in arrival order, until it has used :data:`SLICE` of CPU, then
executes the core's effects once and yields: whatever else became ready runs before the
next slice. The work is the same and happens in the same order per connection; the
effects of many messages are executed together (fewer flushes and writes). Given a
:class:`~weavenet.io.foreground.Foreground`, a slice ends early when an API request or DNS
query arrives, and no slice runs while one is being served (foreground.py).

A connection with more than :data:`HOLD_BYTES` queued stops reading until it is fed, so
a core that falls behind leaves the backlog in the kernel (TCP flow control), not here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from weavenet.io.foreground import Foreground

SLICE = 0.005  # thread CPU per step (measured at 1-5 ms: BENCHMARKS.md, Scale, fourth pass)
HOLD_BYTES = 256 * 1024


class Inbox:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        feed: Callable[[int, bytes], None],
        after: Callable[[], None],
        clock: Callable[[], float] = time.thread_time,
        foreground: Foreground | None = None,
    ) -> None:
        self._loop, self._feed, self._after, self._clock = loop, feed, after, clock
        self._foreground = foreground
        self._queued: dict[int, list[bytes]] = {}  # insertion order: arrival order
        self._sizes: dict[int, int] = {}
        self._held: dict[int, asyncio.Transport] = {}
        self._scheduled = False

    def put(self, conn_id: int, data: bytes, transport: asyncio.Transport) -> None:
        """``data`` arrived on ``conn_id``: queue it and make sure a slice will run."""
        chunks = self._queued.get(conn_id)
        if chunks is None:
            self._queued[conn_id] = [data]
            size = len(data)
        else:
            chunks.append(data)
            size = self._sizes[conn_id] + len(data)
        self._sizes[conn_id] = size
        if size > HOLD_BYTES and conn_id not in self._held:
            transport.pause_reading()
            self._held[conn_id] = transport
        self._schedule()

    def take(self, conn_id: int) -> bytes:
        """Everything queued for ``conn_id`` (b"" if nothing), now: e.g. before its close
        is reported, so that the core sees the connection's bytes first."""
        chunks = self._queued.pop(conn_id, None)
        self._sizes.pop(conn_id, None)
        transport = self._held.pop(conn_id, None)
        if transport is not None and not transport.is_closing():
            transport.resume_reading()
        return b"".join(chunks) if chunks else b""

    def pending(self) -> int:
        """Connections with bytes queued."""
        return len(self._queued)

    def clear(self) -> None:
        self._queued.clear()
        self._sizes.clear()
        self._held.clear()

    def _run(self) -> None:
        self._scheduled = False
        if not self._queued:  # taken meanwhile (a close, or the shell stopped): no effects
            return
        foreground = self._foreground
        if foreground is not None and foreground.busy():
            self._schedule()  # the request's next turn runs first
            return
        end = self._clock() + SLICE
        try:
            while self._queued:
                conn_id = next(iter(self._queued))
                self._feed(conn_id, self.take(conn_id))
                if self._clock() >= end or (foreground is not None and foreground.arriving()):
                    break
        finally:
            self._schedule()
            self._after()

    def _schedule(self) -> None:
        if self._queued and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)
