"""The asyncio shell around the mesh router core: TCP sockets, one timer, effects.

No protocol decisions are made here. Every socket event becomes a call into the core
with ``now = loop.time()``, followed by executing the effects the core returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from weavenet.core.effects import Close, Dial, PersistTargets, Send
from weavenet.core.mesh.report import datapath_report, full_report, status_report
from weavenet.core.mesh.router import Router
from weavenet.core.overlay.datapath import Datapath
from weavenet.io.foreground import Foreground
from weavenet.io.mesh_inbox import Inbox

log = logging.getLogger("weavenet.shell")

DIAL_TIMEOUT = 10.0


class Ticker(Protocol):
    """Another core object driven from the shell's one timer (e.g. the IPAM allocator).

    ``run_effects`` executes what the object has queued; it runs before the router's
    effects, so that state is persisted before the gossip announcing it goes out."""

    def tick(self, now: float) -> None: ...
    def next_wakeup(self) -> float: ...
    def run_effects(self) -> None: ...


class ReportSection(NamedTuple):
    """A report section after "Router" (e.g. "IPAM"): ``report`` gives it for /report,
    ``status`` only what ``weave status`` prints of it (RouterControl.status_report),
    without building its entry lists."""

    key: str
    report: Callable[[], dict[str, Any]]
    status: Callable[[], dict[str, Any]]


def _addr(sockaddr: Any) -> str:
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        host, port = sockaddr[0], sockaddr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(sockaddr)


def _describe(exc: BaseException) -> str:
    """Go-style error text: ``connection refused`` rather than ``[Errno 111] ...``."""
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


class MeshShell:
    """Owns the listening socket, the connections and the router's timer."""

    def __init__(
        self,
        router: Router,
        host: str,
        port: int,
        persist_targets: Callable[[list[str]], None],
    ) -> None:
        self.router = router
        self.host = host
        self.port = port
        self.persist_targets = persist_targets
        self.loop = asyncio.get_running_loop()
        self.transports: dict[int, asyncio.Transport] = {}
        self._next_id = 1
        self._timer: asyncio.TimerHandle | None = None
        self._server: asyncio.Server | None = None
        self._dials: set[asyncio.Task[None]] = set()
        self.post_effects: list[Callable[[], None]] = []  # e.g. the datapath's sends
        self.datapath: Datapath | None = None  # set when a bridge is in use
        self.tickers: list[Ticker] = []
        # optional report sections after "Router" (IPAM, then DNS: Go's order)
        self.sections: list[ReportSection] = []
        # bytes sent, by what sent them ("mesh": this shell's TCP; overlays add theirs)
        self.sent_bytes = 0
        self.sent_counters: dict[str, Callable[[], int]] = {"mesh": lambda: self.sent_bytes}
        # API requests and DNS queries go before the mesh's backlog (see foreground.py)
        self.foreground = Foreground()
        self.inbox = Inbox(self.loop, self._feed, self.run_effects, foreground=self.foreground)
        self._overlay_moved: set[int] = set()  # see overlay_activity
        self._overlay_retry: asyncio.Handle | None = None

    def _feed(self, conn_id: int, data: bytes) -> None:
        self.router.data_received(conn_id, data, self.now())

    def now(self) -> float:
        return self.loop.time()

    def wall_offset(self) -> float:
        return time.time() - self.loop.time()

    async def start(self) -> None:
        """Listen and dial. The daemon calls this last, once the data plane is up: until
        then the router's effects (its dials) wait, so that no connection is made that
        the overlay cannot carry yet, and start-up does not compete with mesh traffic."""
        self._server = await self.loop.create_server(
            lambda: MeshProtocol(self, None), self.host or None, self.port, reuse_address=True
        )
        self.run_effects()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._overlay_retry is not None:  # news held for a request: nobody to tell now
            self._overlay_retry.cancel()
            self._overlay_retry = None
        self._overlay_moved.clear()
        if self._server is not None:
            self._server.close()
        for task in self._dials:
            task.cancel()
        for transport in list(self.transports.values()):
            transport.abort()
        self.transports.clear()
        self.inbox.clear()

    def register(self, transport: asyncio.Transport) -> int:
        conn_id = self._next_id
        self._next_id += 1
        self.transports[conn_id] = transport
        return conn_id

    # ---- effects -------------------------------------------------------------------
    def add_ticker(self, ticker: Ticker) -> None:
        self.tickers.append(ticker)
        self.run_effects()

    def run_effects(self) -> None:
        for ticker in self.tickers:
            ticker.run_effects()
        effects = self.router.take_effects(self.now()) if self._server is not None else []
        for effect in effects:
            if isinstance(effect, Send):
                transport = self.transports.get(effect.conn)
                if transport is not None and not transport.is_closing():
                    transport.write(effect.data)
                    self.sent_bytes += len(effect.data)
            elif isinstance(effect, Close):
                transport = self.transports.pop(effect.conn, None)
                if transport is not None:
                    transport.close()
            elif isinstance(effect, Dial):
                task = self.loop.create_task(self._dial(effect))
                self._dials.add(task)
                task.add_done_callback(self._dials.discard)
            elif isinstance(effect, PersistTargets):
                self.persist_targets(list(effect.targets))
        for hook in self.post_effects:
            hook()
        self._reschedule()

    def _reschedule(self) -> None:
        """Keep one timer armed for the core's next wake-up. A timer that would fire too
        early is left alone (the core simply finds nothing due and we re-arm), which
        saves re-creating it after every socket event."""
        when = min([self.router.next_wakeup(), *(t.next_wakeup() for t in self.tickers)])
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = None
        if when != float("inf"):
            self._timer = self.loop.call_at(max(when, self.now()), self._on_timer)

    def _on_timer(self) -> None:
        if self.foreground.busy():  # a request is being served: its next turn first
            self._timer = self.loop.call_at(self.loop.time(), self._on_timer)
            return
        self._timer = None
        now = self.now()
        self.router.tick(now)
        for ticker in self.tickers:
            if ticker.next_wakeup() <= now:
                ticker.tick(now)
        self.run_effects()

    def overlay_activity(self, names: set[int]) -> None:
        """The data plane moved these peers' forwarders (a heartbeat, an MTU result): the
        router hears of it and sends what it now wants. That is mesh work, and like the
        inbox it waits while an API request is served (the frames themselves do not)."""
        self._overlay_moved |= names
        if self._overlay_retry is None:
            self._deliver_overlay_activity()

    def _deliver_overlay_activity(self) -> None:
        self._overlay_retry = None
        if not self._overlay_moved:
            return
        if self.foreground.busy():
            self._overlay_retry = self.loop.call_soon(self._deliver_overlay_activity)
            return
        names, self._overlay_moved = self._overlay_moved, set()
        self.router.overlay_activity(names, self.now())
        self.run_effects()

    async def _dial(self, dial: Dial) -> None:
        local = (self.host, 0) if self.host else None
        try:
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: MeshProtocol(self, dial.address), dial.host, dial.port, local_addr=local
                ),
                DIAL_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            reason = f"dial tcp4 {dial.address}: connect: {_describe(exc)}"
            refused = isinstance(exc, ConnectionRefusedError)
            self.router.dial_failed(dial.address, reason, self.now(), refused)
            self.run_effects()

    # ---- the control API ----------------------------------------------------------
    def report(self, *, routes: bool = True) -> dict[str, Any]:
        report = full_report(self.router, self.wall_offset(), routes=routes)
        if self.datapath is not None:
            report["Router"].update(datapath_report(self.datapath, self.router, self.wall_offset()))
        for section in self.sections:
            report[section.key] = section.report()
        report["Router"]["SentBytes"] = {k: count() for k, count in self.sent_counters.items()}
        return report

    def status_report(self) -> dict[str, Any]:
        report = status_report(self.router)
        for section in self.sections:
            report[section.key] = section.status()
        return report

    def connect(self, peers: Sequence[str], replace: bool) -> list[str]:
        errors = self.router.connect(list(peers), replace, self.now())
        self.run_effects()
        return errors

    def forget(self, peers: Sequence[str]) -> None:
        self.router.forget(list(peers), self.now())
        self.run_effects()


class MeshProtocol(asyncio.Protocol):
    def __init__(self, shell: MeshShell, target: str | None) -> None:
        self.shell = shell
        self.target = target
        self.conn_id = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        shell = self.shell
        self.conn_id = shell.register(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        delay = 0.0 if self.target is not None else shell.router.accept_delay(shell.now())
        if delay > 0:  # over the accept rate: hold it, as Go's accept loop does
            transport.pause_reading()
            shell.loop.call_later(delay, self._open, transport)
        else:
            self._open(transport)

    def _open(self, transport: asyncio.Transport) -> None:
        shell = self.shell
        if shell.transports.get(self.conn_id) is not transport:
            return  # closed while waiting for its turn
        local = _addr(transport.get_extra_info("sockname"))
        remote = _addr(transport.get_extra_info("peername"))
        outbound = self.target is not None
        shell.router.connection_opened(
            self.conn_id, outbound, local, remote, self.target, shell.now()
        )
        transport.resume_reading()
        shell.run_effects()

    def data_received(self, data: bytes) -> None:
        if self.conn_id and self.transport is not None:
            self.shell.inbox.put(self.conn_id, data, self.transport)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.conn_id or self.shell.transports.pop(self.conn_id, None) is None:
            return
        reason = "EOF" if exc is None else f"read: {_describe(exc)}"
        shell = self.shell
        left = shell.inbox.take(self.conn_id)  # its last bytes first, then the close
        if left:
            shell.router.data_received(self.conn_id, left, shell.now())
        shell.router.connection_closed(self.conn_id, reason, shell.now())
        shell.run_effects()

    def pause_writing(self) -> None:
        self.shell.router.set_writable(self.conn_id, False)

    def resume_writing(self) -> None:
        self.shell.router.set_writable(self.conn_id, True)
        self.shell.run_effects()
