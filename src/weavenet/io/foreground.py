"""Work somebody waits on goes before the mesh's backlog: an API request or a DNS query
is served before the next slice of gossip.

A converging router has more mesh input than it can process at once (mesh_inbox feeds it
in slices). An HTTP request needs several loop turns (the accept, the transport, the
read, the handler), and each of them used to wait behind a slice of gossip and the mesh's
timer: ~4-10 ms of CPU between a request's arrival and its answer. On a machine with
more runnable processes than cores every millisecond of CPU costs tens of ms of wall
time (50 routers on 2 cores: a 4 ms stretch took 200 ms), so that queue was the
``/status`` latency (BENCHMARKS.md, Scale, eleventh pass).

:class:`Foreground` tells background work (the mesh inbox, the mesh timer) when to stand
aside:

* a connection waiting on a watched listening socket, or a datagram on a watched DNS
  socket, is *arriving* work (``poll`` with no timeout: a syscall of ~1 us, so the inbox
  asks between messages);
* from an arrival, and while an HTTP handler runs (:meth:`begin` .. :meth:`end`, an
  aiohttp middleware), background work yields, for at most a budget of this thread's CPU
  time. CPU, not wall time: a router the kernel leaves waiting for a core must not see
  its budget run out while it waits. The budget bounds what a stuck or slow request (an
  IPAM allocation waiting for consensus, a client that connects and says nothing) can
  take from the mesh; :meth:`end` of the last request ends it at once, and
  :meth:`served` does for a DNS socket drained.

Only control work yields: the mesh's inbox and timer, the overlays' news to the router
(a forwarder established, an MTU found: MeshShell.overlay_activity), and fastdp's
heartbeat socket (the kernel forwards fastdp's traffic). Containers' frames on the sleeve
and the fast sleeve are never delayed.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable

# Thread CPU that background work yields after an HTTP arrival or a handler's start: an
# aiohttp request takes ~0.5-1 ms of its own and the data plane's callbacks run between
# its turns; a DNS answer is one turn.
HTTP_BUDGET = 0.010
DNS_BUDGET = 0.001


class Foreground:
    def __init__(self, clock: Callable[[], float] = time.thread_time) -> None:
        self._clock = clock
        self._poll = select.poll()
        self._budgets: dict[int, float] = {}  # watched fd -> CPU budget on arrival
        self._until = 0.0  # background yields while the clock is below this
        self._active = 0  # HTTP handlers running
        self.yields = 0  # turns background work gave up (for tests and debugging)

    def watch(self, sock: socket.socket, budget: float = HTTP_BUDGET) -> None:
        """Treat pending input on ``sock`` (a listening or a datagram socket) as arriving
        foreground work, given ``budget`` seconds of CPU."""
        fd = sock.fileno()
        self._budgets[fd] = budget
        self._poll.register(fd, select.POLLIN)

    def unwatch(self, sock: socket.socket) -> None:
        """Stop watching ``sock``; call it before closing the socket (its number could be
        reused)."""
        self._forget(sock.fileno())

    def close(self) -> None:
        """Stop watching every socket (at shutdown, before they are closed)."""
        for fd in list(self._budgets):
            self._forget(fd)

    def begin(self) -> None:
        """An HTTP handler starts."""
        self._active += 1
        self._until = max(self._until, self._clock() + HTTP_BUDGET)

    def end(self) -> None:
        """An HTTP handler has its response: the last one ends the yielding."""
        self._active = max(0, self._active - 1)
        self.served()

    def served(self) -> None:
        """A watched datagram socket was drained (its queries answered): unless an HTTP
        handler runs, background work need not wait out the arrival's budget."""
        if not self._active:
            self._until = 0.0

    def arriving(self) -> bool:
        """Input waits on a watched socket (and starts its budget)."""
        if not self._budgets:
            return False
        budget = 0.0
        for fd, events in self._poll.poll(0):
            if events & select.POLLNVAL:
                self._forget(fd)  # closed without unwatch: never report it again
            elif fd in self._budgets:
                budget = max(budget, self._budgets[fd])
        if budget:
            self._until = max(self._until, self._clock() + budget)
        return budget > 0

    def busy(self) -> bool:
        """Should background work give up this turn? (It then reschedules itself.)"""
        if self._clock() < self._until or self.arriving():
            self.yields += 1
            return True
        return False

    def _forget(self, fd: int) -> None:
        if self._budgets.pop(fd, None) is not None:
            self._poll.unregister(fd)
