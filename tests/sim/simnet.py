"""An in-process network for many router cores: simulated time, delays, drops, resets.

Each connection is a pair of conn ids (one per router) delivering bytes in order with
random latency, so messages on different connections reorder freely. ``drop`` loses
whole post-handshake messages (on unencrypted meshes: a lost message is still a valid
stream) and refuses dials; ``reset`` breaks established connections at random.
``meter`` (if set) sees every post-handshake send as ``(router index, bytes)``.

Each router's next wake-up is cached and refreshed only after a call into that router
(every internal path ends in ``_effects(i)``; actions scheduled with :meth:`at` and
every :meth:`run_until` refresh them all), so a step costs O(1) routers, not O(n).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from weavenet.core.effects import Close, Dial, PersistTargets, Send
from weavenet.core.mesh.overlay import Overlay
from weavenet.core.mesh.router import Router, RouterConfig
from weavenet.core.peername import format_peer_name


class Ticker(Protocol):
    """Another core object on a router's event loop (an IPAM allocator, a nameserver)."""

    def tick(self, now: float) -> None: ...

    def next_wakeup(self) -> float: ...


@dataclass
class Link:
    router: int  # index of the router owning this end
    peer_conn: int  # conn id of the other end
    last_delivery: float = 0.0


@dataclass
class SimNet:
    n: int
    seed: int
    drop: float = 0.0
    reset: float = 0.0
    max_delay: float = 0.02
    discovery: bool = True
    password: bytes | None = None
    now: float = 0.0
    routers: list[Router] = field(default_factory=list)
    links: dict[int, Link] = field(default_factory=dict)
    events: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    tickers: list[tuple[int, Ticker]] = field(default_factory=list)  # (router index, ticker)
    meter: Callable[[int, bytes], None] | None = None
    unreachable: set[int] = field(default_factory=set)  # routers whose dials are refused
    # routers whose dials connect and are then reset during the handshake (a dying
    # process's listening socket: the kernel accepted the connection, nobody serves it)
    dying: set[int] = field(default_factory=set)
    overlay: Callable[[int], Overlay] | None = None  # router index -> its overlay
    dials: list[tuple[float, int, str]] = field(default_factory=list)  # (when, router, address)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        for i in range(self.n):
            config = RouterConfig(
                name=i + 1,
                nickname=f"r{i}",
                discovery=self.discovery,
                password=self.password,
            )
            overlay = self.overlay(i) if self.overlay is not None else None
            rng = random.Random(self.seed * 1000 + i)
            self.routers.append(Router(config, rng, self.now, overlay))
        self._index = {self.address(i): i for i in range(self.n)}
        self._wake = [float("inf")] * self.n
        self._dirty: set[int] = set(range(self.n))

    def address(self, i: int) -> str:
        return f"10.0.{i // 250}.{i % 250 + 1}:6783"

    def index_of(self, address: str) -> int | None:
        return self._index.get(address)

    def connect(self, i: int, targets: list[int]) -> None:
        self.routers[i].connect([self.address(t) for t in targets], False, self.now)
        self._effects(i)

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` at ``when``; it may call into any router."""

        def external() -> None:
            action()
            self._dirty.update(range(self.n))

        self._at(when, external)

    def _at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.events, (when, next(self._ids), action))

    # ---- effects -------------------------------------------------------------------
    def flush(self, i: int) -> None:
        """Carry out router i's effects (after a call into it from outside the net)."""
        self._effects(i)

    def _effects(self, i: int) -> None:
        self._dirty.add(i)
        for effect in self.routers[i].take_effects(self.now):
            if isinstance(effect, Send):
                self._send(i, effect)
            elif isinstance(effect, Close):
                self._close(effect.conn)
            elif isinstance(effect, Dial):
                self.dials.append((self.now, i, effect.address))
                delay = self.rng.uniform(0.001, self.max_delay)
                self._at(self.now + delay, functools.partial(self._dial, i, effect))
            else:
                assert isinstance(effect, PersistTargets)

    def _send(self, i: int, effect: Send) -> None:
        link = self.links.get(effect.conn)
        if link is None:
            return
        conn = self.routers[i].conns.get(effect.conn)
        if self.meter is not None and conn is not None and conn.registered:
            self.meter(i, effect.data)
        established = conn is not None and conn.registered and self.password is None
        if established and self.rng.random() < self.drop:
            return
        if established and self.rng.random() < self.reset:
            self._close(effect.conn)
            self.routers[i].connection_closed(effect.conn, "simulated reset", self.now)
            self._effects(i)
            return
        when = max(link.last_delivery, self.now + self.rng.uniform(0.0005, self.max_delay))
        link.last_delivery = when
        self._at(when, lambda: self._deliver(link.peer_conn, effect.data))

    def _deliver(self, conn_id: int, data: bytes) -> None:
        link = self.links.get(conn_id)
        if link is not None:
            self.routers[link.router].data_received(conn_id, data, self.now)
            self._effects(link.router)

    def _close(self, conn_id: int) -> None:
        link = self.links.pop(conn_id, None)
        if link is None:
            return
        peer_link = self.links.pop(link.peer_conn, None)
        if peer_link is not None:
            other = peer_link.router
            when = self.now + self.rng.uniform(0.0005, self.max_delay)

            def lost() -> None:
                self.routers[other].connection_closed(link.peer_conn, "EOF", self.now)
                self._effects(other)

            self._at(max(when, peer_link.last_delivery), lost)

    def _dial(self, i: int, dial: Dial) -> None:
        j = self.index_of(dial.address)
        if (
            j is None
            or i in self.unreachable
            or j in self.unreachable
            or self.rng.random() < self.drop
        ):
            # no router at the address is a refusal; an unreachable host times out
            refused = j is None
            error = "connection refused" if refused else "i/o timeout"
            self.routers[i].dial_failed(dial.address, error, self.now, refused)
            self._effects(i)
            return
        if j in self.dying:
            self._reset_in_handshake(i, dial)
            return
        delay = self.routers[j].accept_delay(self.now)
        self._at(self.now + delay, lambda: self._open_pair(i, j, dial))

    def _reset_in_handshake(self, i: int, dial: Dial) -> None:
        conn_id = next(self._ids)
        local = self.address(i).replace(":6783", f":{40000 + conn_id}")
        self.routers[i].connection_opened(
            conn_id, True, local, dial.address, dial.address, self.now
        )
        self._effects(i)

        def reset() -> None:
            self.routers[i].connection_closed(conn_id, "read: connection reset by peer", self.now)
            self._effects(i)

        self._at(self.now + self.rng.uniform(0.0005, self.max_delay), reset)

    def _open_pair(self, i: int, j: int, dial: Dial) -> None:
        a, b = next(self._ids), next(self._ids)
        self.links[a] = Link(i, b)
        self.links[b] = Link(j, a)
        local_i, local_j = self.address(i).replace(":6783", f":{40000 + a}"), self.address(j)
        self.routers[j].connection_opened(b, False, local_j, local_i, None, self.now)
        self.routers[i].connection_opened(a, True, local_i, local_j, dial.address, self.now)
        self._effects(j)
        self._effects(i)

    def restart(self, i: int, seed: int) -> None:
        """Router i dies abruptly (every peer sees its connections reset) and a new
        process with the same name and a new UID takes its place."""
        for conn_id in list(self.routers[i].conns):
            self._close(conn_id)
        old = self.routers[i]
        overlay = self.overlay(i) if self.overlay is not None else None
        self.routers[i] = Router(old.config, random.Random(seed), self.now, overlay)
        self._dirty.add(i)

    # ---- running -------------------------------------------------------------------
    def run_until(self, done: Callable[[], bool], limit: float) -> bool:
        """Advance simulated time until ``done()`` or ``limit`` seconds have passed."""
        deadline = self.now + limit
        self._dirty.update(range(self.n))  # the caller may have called into routers
        while self.now <= deadline:
            if done():
                return True
            wake = min(
                self._router_wakeup(),
                min((t.next_wakeup() for _, t in self.tickers), default=float("inf")),
            )
            event_at = self.events[0][0] if self.events else float("inf")
            step = min(wake, event_at, deadline + 1)
            self.now = max(self.now, step)
            if event_at <= wake:
                if not self.events:
                    break
                _, _, action = heapq.heappop(self.events)
                action()
            else:
                for i, router in enumerate(self.routers):
                    if self._wake[i] <= self.now:
                        router.tick(self.now)
                        self._effects(i)
                for i, ticker in self.tickers:
                    if ticker.next_wakeup() <= self.now:
                        ticker.tick(self.now)
                        self.flush(i)
        return done()

    def _router_wakeup(self) -> float:
        for i in self._dirty:
            self._wake[i] = self.routers[i].next_wakeup()
        self._dirty.clear()
        return min(self._wake)

    def run_for(self, seconds: float) -> None:
        self.run_until(lambda: False, seconds)

    # ---- observations --------------------------------------------------------------
    def topology(self, i: int) -> dict[str, tuple[int, int, tuple[tuple[str, bool], ...]]]:
        """Router i's view: name -> (uid, version, sorted (remote, established))."""
        view = {}
        for peer in self.routers[i].peers:
            conns = tuple(
                sorted((format_peer_name(r), c.established) for r, c in peer.connections.items())
            )
            view[format_peer_name(peer.name)] = (peer.uid, peer.version, conns)
        return view

    def established_counts(self) -> list[int]:
        return [sum(c.established for c in r.by_peer.values()) for r in self.routers]
