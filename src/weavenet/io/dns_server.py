"""The asyncio shell of WeaveDNS: UDP and TCP listeners, upstream sockets, one timer.

No DNS decisions are made here: queries go to the Resolver, forwarding decisions to the
Upstream machine, whose effects (send a query, answer a client) this shell performs.
Bad input costs one debug line and a counter; nothing a client sends stops the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec

from weavenet.core.dns.resolvconf import DEFAULT_PATH, ResolvConfWatcher
from weavenet.core.dns.resolver import Forward, Resolver, Transport
from weavenet.core.dns.upstream import DNS_PORT, ClientReply, SendQuery, Upstream
from weavenet.io.foreground import DNS_BUDGET, Foreground

log = logging.getLogger("weavenet.dns")

TCP_IDLE_TIMEOUT = 10.0  # seconds a client TCP connection may sit idle (RFC 7766 §6.2.3)
MAX_UDP_READ = 65535
BIND_ATTEMPTS = 20
UDP_BATCH = 64
MAX_TCP_CLIENTS = 256  # concurrent client TCP connections; more are closed at once
RCODE_FORMERR = 1

Reply = Callable[[bytes], None]


class DnsStats(msgspec.Struct):
    queries: int = 0
    answered: int = 0
    forwarded: int = 0
    garbage: int = 0  # no answer at all (shorter than a header, or not a query)
    formerr: int = 0
    errors: int = 0  # bugs caught at the edge; see the log
    tcp_refused: int = 0  # TCP connections closed because MAX_TCP_CLIENTS were open


class DnsServer:
    """Serves one Resolver on UDP and TCP at one address and port."""

    def __init__(
        self,
        resolver: Resolver,
        upstream: Upstream,
        resolv_conf: str = DEFAULT_PATH,
        *,
        upstream_port: int = DNS_PORT,
        rng: random.Random | None = None,
        tcp_idle_timeout: float = TCP_IDLE_TIMEOUT,
        foreground: Foreground | None = None,
    ) -> None:
        """``foreground``: the router's, told of queries waiting on the UDP socket so that
        the mesh's backlog does not go first (io/foreground.py)."""
        self.resolver = resolver
        self.foreground = foreground
        self.upstream = upstream
        self.resolv_conf = resolv_conf
        self.upstream_port = upstream_port
        self.tcp_idle_timeout = tcp_idle_timeout
        self.stats = DnsStats()
        self._rng = rng or random.Random()
        self._loop = asyncio.get_running_loop()
        self._udp: socket.socket | None = None
        self._tcp: asyncio.Server | None = None
        self._watcher: ResolvConfWatcher | None = None
        self._replies: dict[int, Reply] = {}
        self._upstream_socks: dict[int, socket.socket] = {}
        self._upstream_tasks: dict[int, asyncio.Task[None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._exclude: tuple[str, ...] = ()

    async def start(self, host: str, port: int) -> int:
        """Listen on UDP and TCP; returns the port (port 0 picks one free for both)."""
        self._watcher = ResolvConfWatcher(exclude=(host, *self._exclude))
        for _ in range(BIND_ATTEMPTS if port == 0 else 1):
            try:
                bound = await self._bind(host, port)
            except OSError:
                if port != 0:
                    raise
                continue  # the UDP port was free but its TCP twin was taken: pick again
            log.info("DNS listening on %s:%d (UDP and TCP)", host, bound)
            self._servers()  # read resolv.conf now: status shows the upstreams from the start
            return bound
        raise OSError(f"no port free for both UDP and TCP on {host}")

    async def _bind(self, host: str, port: int) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        udp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            udp.bind((host, port))
            udp.setblocking(False)
            bound = int(udp.getsockname()[1])
            self._tcp = await asyncio.start_server(self._serve_tcp, host, bound)
        except OSError:
            udp.close()
            raise
        self._udp = udp
        self._loop.add_reader(udp.fileno(), self._udp_queries, udp)
        if self.foreground is not None:
            self.foreground.watch(udp, DNS_BUDGET)
        return bound

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for xid in list(self._replies):
            self._drop_exchange(xid)
        if self._udp is not None:
            self._loop.remove_reader(self._udp.fileno())
            if self.foreground is not None:
                self.foreground.unwatch(self._udp)
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._clients):
                writer.close()
            await self._tcp.wait_closed()

    def exclude_upstreams(self, hosts: tuple[str, ...]) -> None:
        """Never forward to ``hosts`` (the other listen addresses of this router)."""
        self._exclude = hosts
        if self._watcher is not None:
            self._watcher.set_exclude((*hosts, *self._own_host()))
            self._servers()  # reread now: status shows the new list at once

    def _own_host(self) -> tuple[str, ...]:
        return (str(self._udp.getsockname()[0]),) if self._udp is not None else ()

    def upstream_servers(self) -> tuple[str, ...]:
        """The current upstream list (for status and report)."""
        return self._watcher.config.nameservers if self._watcher else ()

    # -- queries --

    def _udp_queries(self, sock: socket.socket) -> None:
        """Serve every datagram waiting (up to UDP_BATCH): one loop wake-up for many."""
        for _ in range(UDP_BATCH):
            try:
                data, addr = sock.recvfrom(MAX_UDP_READ)
            except (BlockingIOError, InterruptedError):
                if self.foreground is not None:
                    self.foreground.served()  # drained: the mesh's backlog may go on
                return
            except OSError as exc:  # e.g. ICMP errors queued on the socket
                log.debug("DNS UDP listener: %s", exc)
                continue
            self.handle(data, str(addr[0]), "udp", partial(_send_to, sock, addr))

    def handle(
        self,
        data: bytes,
        client: str,
        transport: Transport,
        reply: Reply,
        exchanges: set[int] | None = None,
    ) -> bool:
        """Answer one query; False when it gets no answer (the caller may drop the client).
        The id of an upstream exchange started for it is added to ``exchanges``."""
        self.stats.queries += 1
        try:
            result = self.resolver.answer(data, client, transport, self._loop.time(), self._rng)
        except Exception:  # a bug in our code must not take the server down
            self.stats.errors += 1
            log.exception("DNS query from %s failed", client)
            return False
        if result is None:
            self.stats.garbage += 1
            log.debug("DNS: no answer to %d bytes from %s (not a query)", len(data), client)
            return False
        if isinstance(result, Forward):
            xid = self._forward(result, transport == "tcp", reply)
            if exchanges is not None:
                exchanges.add(xid)
            return True
        if len(result) > 3 and result[3] & 0x0F == RCODE_FORMERR:
            self.stats.formerr += 1
            log.debug("DNS: FORMERR for %d bytes from %s", len(data), client)
        self.stats.answered += 1
        reply(result)
        return True

    def _forward(self, forward: Forward, client_tcp: bool, reply: Reply) -> int:
        self.stats.forwarded += 1
        servers = tuple((s, self.upstream_port) for s in self._servers())
        now = self._loop.time()
        xid = self.upstream.start(forward, servers, client_tcp, now, self._rng)
        self._replies[xid] = reply
        self._run_effects()
        return xid

    def _servers(self) -> tuple[str, ...]:
        watcher = self._watcher
        assert watcher is not None
        now = self._loop.time()
        if watcher.stat_due(now):
            try:
                mtime: float | None = os.stat(self.resolv_conf).st_mtime
            except OSError as exc:
                log.error("unable to read upstream config %s: %s", self.resolv_conf, exc)
                mtime = None
            if watcher.on_stat(mtime, now) and mtime is not None:
                self._reread(watcher, mtime)
        return watcher.config.nameservers

    def _reread(self, watcher: ResolvConfWatcher, mtime: float) -> None:
        try:
            with open(self.resolv_conf, encoding="utf-8", errors="replace") as f:
                watcher.on_text(f.read(), mtime)
        except OSError as exc:
            log.error("unable to read upstream config %s: %s", self.resolv_conf, exc)

    # -- upstream effects --

    def _run_effects(self) -> None:
        for effect in self.upstream.take_effects():
            if isinstance(effect, SendQuery):
                self._send_upstream(effect)
            elif isinstance(effect, ClientReply):
                reply = self._replies.get(effect.xid)
                self._drop_exchange(effect.xid)
                if reply is not None:
                    reply(effect.data)
        self._schedule()

    def _send_upstream(self, q: SendQuery) -> None:
        self._drop_sockets(q.xid)
        if q.tcp:
            task = self._loop.create_task(self._tcp_exchange(q))
            self._upstream_tasks[q.xid] = task
            return
        family = socket.AF_INET6 if ":" in q.server[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        self._upstream_socks[q.xid] = sock
        try:
            sock.connect(q.server)
            sock.send(q.data)
        except OSError as exc:
            log.debug("DNS upstream %s: %s", q.server[0], exc)
            self._loop.call_soon(self._upstream_failed, q.xid)
            return
        self._loop.add_reader(sock.fileno(), self._udp_readable, q.xid, sock)

    def _udp_readable(self, xid: int, sock: socket.socket) -> None:
        try:
            data = sock.recv(MAX_UDP_READ)
        except BlockingIOError:
            return
        except OSError as exc:  # ICMP port unreachable and the like
            log.debug("DNS upstream error: %s", exc)
            self._upstream_failed(xid)
            return
        self.upstream.on_reply(xid, data, self._loop.time(), self._rng)
        self._run_effects()

    async def _tcp_exchange(self, q: SendQuery) -> None:
        try:
            reader, writer = await asyncio.open_connection(q.server[0], q.server[1])
            try:
                writer.write(len(q.data).to_bytes(2, "big") + q.data)
                length = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(length)
            finally:
                writer.close()
        except (OSError, asyncio.IncompleteReadError) as exc:
            log.debug("DNS upstream %s over TCP: %s", q.server[0], exc)
            self._upstream_tasks.pop(q.xid, None)
            self._upstream_failed(q.xid)
            return
        self._upstream_tasks.pop(q.xid, None)
        self.upstream.on_reply(q.xid, data, self._loop.time(), self._rng)
        self._run_effects()

    def _upstream_failed(self, xid: int) -> None:
        self.upstream.on_error(xid, self._loop.time(), self._rng)
        self._run_effects()

    def _drop_exchange(self, xid: int) -> None:
        self._replies.pop(xid, None)
        self.upstream.cancel(xid)
        self._drop_sockets(xid)

    def _drop_sockets(self, xid: int) -> None:
        sock = self._upstream_socks.pop(xid, None)
        if sock is not None:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        task = self._upstream_tasks.pop(xid, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wakeup = self.upstream.next_wakeup()
        if wakeup != float("inf"):
            self._timer = self._loop.call_at(wakeup, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.upstream.tick(self._loop.time(), self._rng)
        self._run_effects()

    # -- TCP clients --

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        pending: set[int] = set()
        if len(self._clients) >= MAX_TCP_CLIENTS:
            self.stats.tcp_refused += 1
            log.debug(
                "DNS: %d TCP clients already; closing the one from %s", len(self._clients), client
            )
            writer.close()
            return
        self._clients.add(writer)

        def reply(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(len(data).to_bytes(2, "big") + data)

        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), self.tcp_idle_timeout)
                length = int.from_bytes(head, "big")
                data = await asyncio.wait_for(reader.readexactly(length), self.tcp_idle_timeout)
                if not self.handle(data, client, "tcp", reply, pending):
                    break  # garbage on a stream: the framing can no longer be trusted
                pending &= self._replies.keys()
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for xid in pending & self._replies.keys():
                self._drop_exchange(xid)
            self._clients.discard(writer)
            writer.close()


def _send_to(sock: socket.socket, addr: Any, data: bytes) -> None:
    try:
        sock.sendto(data, addr)
    except OSError as exc:  # a full socket buffer or a vanished client: the client retries
        log.debug("DNS UDP answer to %s: %s", addr, exc)
