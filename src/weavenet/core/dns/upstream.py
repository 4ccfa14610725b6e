"""Forwarding to the upstream servers, sans-IO (Go handleRecursive, with failover).

Each client query the resolver cannot answer becomes an exchange: the upstream servers
are tried in order, each with ``timeout`` seconds; a silent or failing server passes the
turn to the next; when none is left the client gets SERVFAIL.  An upstream answer with
TC set over UDP is asked again over TCP.  The shell performs SendQuery effects (a fresh
socket per query, so source ports are unpredictable) and feeds back replies and errors.
"""

from __future__ import annotations

import logging
import random
from enum import Enum

import msgspec

from weavenet.core.dns.query import Forward

DEFAULT_TIMEOUT = 5.0  # --dns-fallback-timeout
DNS_PORT = 53
MAX_PENDING = 1000  # exchanges in flight; beyond, SERVFAIL at once (each holds a socket)

log = logging.getLogger("weavenet.dns")


class Step(Enum):
    UDP = "udp"  # waiting for a server's UDP answer
    TCP = "tcp"  # waiting for a server's TCP answer
    DONE = "done"


class SendQuery(msgspec.Struct, frozen=True):
    xid: int
    server: tuple[str, int]
    data: bytes
    tcp: bool


class ClientReply(msgspec.Struct, frozen=True):
    """Answer the client; the exchange is over (the shell drops its sockets)."""

    xid: int
    data: bytes


UpstreamEffect = SendQuery | ClientReply


class _Exchange(msgspec.Struct):
    forward: Forward
    servers: tuple[tuple[str, int], ...]
    client_tcp: bool
    index: int = -1
    step: Step = Step.UDP
    upstream_id: int = 0
    deadline: float = float("inf")


class Upstream:
    def __init__(self, timeout: float = DEFAULT_TIMEOUT, max_pending: int = MAX_PENDING) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self.overflows = 0  # queries failed at once because max_pending were in flight
        self._exchanges: dict[int, _Exchange] = {}
        self._next_xid = 1
        self._effects: list[UpstreamEffect] = []
        self.failures = 0  # exchanges answered with SERVFAIL

    def start(
        self,
        forward: Forward,
        servers: tuple[tuple[str, int], ...],
        client_tcp: bool,
        now: float,
        rng: random.Random,
    ) -> int:
        """Begin an exchange; returns its id (effects follow in take_effects)."""
        xid = self._next_xid
        self._next_xid += 1
        self._exchanges[xid] = _Exchange(forward, servers, client_tcp)
        if len(self._exchanges) > self.max_pending:
            self.overflows += 1
            self._finish(xid, forward.servfail)
            return xid
        self._next_server(xid, now, rng)
        return xid

    def on_reply(self, xid: int, data: bytes, now: float, rng: random.Random) -> None:
        ex = self._exchanges.get(xid)
        if ex is None or not self._matches(ex, data):
            return  # late, spoofed or garbled: keep waiting for the real answer
        if ex.step is Step.UDP and data[2] & 0x02:
            self._ask(xid, ex, now, rng, tcp=True)  # truncated: ask the same server over TCP
            return
        self._finish(xid, _for_client(ex.forward, data))

    def on_error(self, xid: int, now: float, rng: random.Random) -> None:
        """The current server refused the connection or closed it: try the next one."""
        if xid in self._exchanges:
            self._next_server(xid, now, rng)

    def cancel(self, xid: int) -> None:
        """The client went away (TCP connection closed)."""
        self._exchanges.pop(xid, None)

    def tick(self, now: float, rng: random.Random) -> None:
        for xid in [x for x, ex in self._exchanges.items() if ex.deadline <= now]:
            server = self._exchanges[xid].servers[self._exchanges[xid].index]
            log.debug("upstream %s:%d silent for %.1fs", server[0], server[1], self.timeout)
            self._next_server(xid, now, rng)

    def next_wakeup(self) -> float:
        return min((ex.deadline for ex in self._exchanges.values()), default=float("inf"))

    def pending(self) -> int:
        return len(self._exchanges)

    def take_effects(self) -> list[UpstreamEffect]:
        effects, self._effects = self._effects, []
        return effects

    def _next_server(self, xid: int, now: float, rng: random.Random) -> None:
        ex = self._exchanges[xid]
        ex.index += 1
        if ex.index >= len(ex.servers):
            self.failures += 1
            self._finish(xid, ex.forward.servfail)
            return
        self._ask(xid, ex, now, rng, tcp=ex.client_tcp)

    def _ask(self, xid: int, ex: _Exchange, now: float, rng: random.Random, tcp: bool) -> None:
        ex.step = Step.TCP if tcp else Step.UDP
        ex.upstream_id = rng.getrandbits(16)
        ex.deadline = now + self.timeout
        data = ex.upstream_id.to_bytes(2, "big") + ex.forward.query[2:]
        self._effects.append(SendQuery(xid, ex.servers[ex.index], data, tcp))

    def _finish(self, xid: int, data: bytes) -> None:
        ex = self._exchanges.pop(xid)
        ex.step = Step.DONE
        self._effects.append(ClientReply(xid, data))

    @staticmethod
    def _matches(ex: _Exchange, data: bytes) -> bool:
        question = ex.forward.question
        return (
            len(data) >= 12 + len(question)
            and int.from_bytes(data[:2], "big") == ex.upstream_id
            and bool(data[2] & 0x80)  # QR: a response
            and data[4:6] == b"\x00\x01"
            and data[12 : 12 + len(question)].lower() == question.lower()
        )


def _for_client(forward: Forward, data: bytes) -> bytes:
    """The upstream answer under the client's ID; header and question only, with TC, when
    it does not fit the client's UDP limit."""
    reply = forward.client_id.to_bytes(2, "big") + data[2:]
    if len(reply) <= forward.max_size:
        return reply
    end = 12 + len(forward.question)
    return (
        reply[:2] + bytes((reply[2] | 0x02, reply[3])) + b"\x00\x01" + b"\x00" * 6 + (reply[12:end])
    )
