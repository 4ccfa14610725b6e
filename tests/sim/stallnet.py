"""SimNet with bench-scale's troubles: connections that carry only so many bytes a second
behind asyncio's write buffer limits, and routers starved of CPU for seconds.

A subclass, so that the plain simulation stays as it is: the sender's transport holds
what is not delivered yet and pauses its protocol (``set_writable(False)``) above 64 KB,
resuming it once drained to 16 KB; a stalled router reads nothing, runs no timer and
gets its input, in order, once the stall is over.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.sim.simnet import SimNet
from weavenet.core.effects import Send

# asyncio's default write buffer limits
WRITE_HIGH, WRITE_LOW = 64 * 1024, 16 * 1024


@dataclass
class StallNet(SimNet):
    rate: float = 30_000.0  # bytes/s each connection carries
    write_high: int = WRITE_HIGH
    write_low: int = WRITE_LOW
    busy_until: dict[int, float] = field(default_factory=dict)
    queued: dict[int, int] = field(default_factory=dict)  # conn id -> bytes not delivered
    pauses: int = 0

    def stall(self, i: int, seconds: float) -> None:
        """Router i does nothing for ``seconds``."""
        self.busy_until[i] = max(self.busy_until.get(i, 0.0), self.now + seconds)

    def _busy(self, i: int) -> bool:
        return self.busy_until.get(i, 0.0) > self.now

    def _when_running(self, i: int, action: Callable[[], None]) -> None:
        if self._busy(i):
            self.at(self.busy_until[i], lambda: self._when_running(i, action))
        else:
            action()

    def _send(self, i: int, effect: Send) -> None:
        link = self.links.get(effect.conn)
        if link is not None:  # the bytes take their time on the wire, one after the other
            link.last_delivery = max(link.last_delivery, self.now) + len(effect.data) / self.rate
            before = self.queued.get(effect.conn, 0)
            self.queued[effect.conn] = before + len(effect.data)
            if before <= self.write_high < before + len(effect.data):
                self.pauses += 1
                self.routers[i].set_writable(effect.conn, False)
        super()._send(i, effect)

    def _deliver(self, conn_id: int, data: bytes) -> None:
        link = self.links.get(conn_id)
        if link is None:
            return
        if self._busy(link.router):  # later bytes on this link wait too: order is kept
            self.at(self.busy_until[link.router], lambda: self._deliver(conn_id, data))
            return
        self._drained(link.peer_conn, len(data))
        super()._deliver(conn_id, data)

    def _drained(self, sender_conn: int, size: int) -> None:
        before = self.queued.get(sender_conn, 0)
        self.queued[sender_conn] = before - size
        sender = self.links.get(sender_conn)
        if sender is not None and before > self.write_low >= before - size:
            self._when_running(sender.router, lambda: self._resume(sender.router, sender_conn))

    def _resume(self, i: int, conn_id: int) -> None:
        if conn_id in self.links:
            self.routers[i].set_writable(conn_id, True)
            self._effects(i)

    def run_until(self, done: Callable[[], bool], limit: float) -> bool:
        """As SimNet's, but a stalled router's timers wait for the end of its stall."""
        deadline = self.now + limit
        while self.now <= deadline:
            if done():
                return True
            wakes = [self._wakeup(i) for i in range(self.n)]
            event_at = self.events[0][0] if self.events else float("inf")
            self.now = max(self.now, min(min(wakes), event_at, deadline + 1))
            if event_at <= min(wakes):
                if not self.events:
                    break
                _, _, action = heapq.heappop(self.events)
                action()
                continue
            for i, wake in enumerate(wakes):
                if wake <= self.now:
                    self.routers[i].tick(self.now)
                    self._effects(i)
        return done()

    def _wakeup(self, i: int) -> float:
        return max(self.routers[i].next_wakeup(), self.busy_until.get(i, 0.0))
