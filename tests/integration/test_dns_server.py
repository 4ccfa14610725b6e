"""The DNS server on loopback (127.0.0.x, random ports): real queries over UDP and TCP,
forwarding to fake upstream servers with failover, and a flood of garbage."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rrset
import pytest

from weavenet.core.dns.nameserver import Nameserver
from weavenet.core.dns.resolver import Resolver, ResolverConfig
from weavenet.core.dns.upstream import Upstream
from weavenet.io.dns_server import DnsServer

US = 0x0A0000000001
HOST = "127.0.0.1"
SILENT, ANSWERING, TRUNCATING = "127.0.0.2", "127.0.0.3", "127.0.0.4"
UPSTREAM_ADDR = "192.0.2.99"
IDLE = 0.5  # seconds before the server closes an idle TCP connection
T = TypeVar("T")


class Peers:
    def known_peers(self) -> dict[int, str]:
        return {US: "us"}


def upstream_reply(data: bytes, truncated: bool = False) -> bytes:
    query = dns.message.from_wire(data)
    reply = dns.message.make_response(query)
    if truncated:
        reply.flags |= dns.flags.TC
    else:
        name = query.question[0].name
        reply.answer.append(dns.rrset.from_text(name, 60, "IN", "A", UPSTREAM_ADDR))
    return reply.to_wire()


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers every A query with UPSTREAM_ADDR, stays silent, or (TRUNCATING) answers
    with TC over UDP and in full over TCP; counts what it got."""

    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.queries = 0
        self.tcp_queries = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queries += 1
        if self.addr != SILENT and self.transport is not None:
            self.transport.sendto(upstream_reply(data, self.addr == TRUNCATING), addr)

    async def serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = int.from_bytes(await reader.readexactly(2), "big")
        self.tcp_queries += 1
        reply = upstream_reply(await reader.readexactly(length))
        writer.write(len(reply).to_bytes(2, "big") + reply)
        await writer.drain()
        writer.close()


class Stack:
    """A DnsServer and its fake upstreams on an event loop in a thread of their own."""

    def __init__(self, tmp: Path, upstreams: list[str], all_answers: bool, timeout: float):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.resolv = tmp / "resolv.conf"
        self.resolv.write_text("".join(f"nameserver {u}\n" for u in upstreams))
        self.fakes: dict[str, FakeUpstream] = {}
        self.ns = Nameserver(US, "weave.local.", Peers())
        config = ResolverConfig(all_answers=all_answers, allowed_networks=("10.32.0.0/12",))
        self.resolver = Resolver(config, self.ns)
        self.upstream_port = self.run(self._fakes(upstreams))
        self.server: DnsServer = self.run(self._server(timeout))
        self.port: int = self.run(self.server.start(HOST, 0))

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def call(self, fn: Callable[[], T]) -> T:
        done: Future[T] = Future()
        self.loop.call_soon_threadsafe(lambda: done.set_result(fn()))
        return done.result(10)

    async def _server(self, timeout: float) -> DnsServer:
        return DnsServer(
            self.resolver,
            Upstream(timeout),
            str(self.resolv),
            upstream_port=self.upstream_port,
            rng=random.Random(4),
            tcp_idle_timeout=IDLE,
        )

    async def _fakes(self, upstreams: list[str]) -> int:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # find one port free on every upstream address
            port = 0
            made: list[tuple[str, FakeUpstream, Any]] = []
            try:
                for addr in upstreams:
                    fake = FakeUpstream(addr)
                    transport, _ = await loop.create_datagram_endpoint(
                        lambda f=fake: f, local_addr=(addr, port)
                    )
                    port = transport.get_extra_info("sockname")[1]
                    made.append((addr, fake, transport))
                    if addr == TRUNCATING:
                        tcp = await asyncio.start_server(fake.serve_tcp, addr, port)
                        made.append((addr, fake, tcp))
            except OSError:
                for _, _, transport in made:
                    transport.close()
                continue
            self.fakes = {addr: fake for addr, fake, _ in made}
            self._fake_transports = [t for _, _, t in made]
            return port
        raise RuntimeError("no common free port on the fake upstream addresses")

    def close(self) -> None:
        self.run(self.server.close())
        for transport in self._fake_transports:
            self.loop.call_soon_threadsafe(transport.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(
        upstreams: list[str] | None = None, all_answers: bool = False, timeout: float = 0.5
    ) -> Stack:
        stack = Stack(tmp_path, upstreams or [SILENT, ANSWERING], all_answers, timeout)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


def register(stack: Stack, name: str, *addrs: int) -> None:
    for i, addr in enumerate(addrs):
        stack.call(lambda i=i, addr=addr: stack.ns.add_entry(name, f"c{i}", addr, time.time()))


def udp(stack: Stack, name: str, rdtype: str = "A", **kw: Any) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    return dns.query.udp(q, HOST, port=stack.port, timeout=5)


def ips(reply: dns.message.Message) -> list[str]:
    return [rd.address for rrset in reply.answer for rd in rrset]


def test_answers_local_names_over_udp_and_tcp(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    register(stack, "web.weave.local.", 0x0A200001)
    assert ips(udp(stack, "WEB.weave.local.")) == ["10.32.0.1"]
    q = dns.message.make_query("web.weave.local.", "A")
    assert ips(dns.query.tcp(q, HOST, port=stack.port, timeout=5)) == ["10.32.0.1"]
    assert udp(stack, "nothere.weave.local.").rcode() == dns.rcode.NXDOMAIN
    ptr = udp(stack, "1.0.32.10.in-addr.arpa.", "PTR")
    assert ptr.answer[0][0].target.to_text() == "web.weave.local."


def test_udp_truncates_and_tcp_gives_all(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(all_answers=True)
    register(stack, "big.weave.local.", *(0x0A300000 + i for i in range(50)))
    small = udp(stack, "big.weave.local.")
    assert small.flags & dns.flags.TC and len(ips(small)) < 50
    q = dns.message.make_query("big.weave.local.", "A")
    full = dns.query.tcp(q, HOST, port=stack.port, timeout=5)
    assert len(ips(full)) == 50 and not full.flags & dns.flags.TC


def test_several_queries_on_one_tcp_connection(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    register(stack, "a.weave.local.", 0x0A200001)
    register(stack, "b.weave.local.", 0x0A200002)
    with socket.create_connection((HOST, stack.port), timeout=5) as sock:
        queries = [dns.message.make_query(n, "A") for n in ("a.weave.local.", "b.weave.local.")]
        sock.sendall(
            b"".join(len(w).to_bytes(2, "big") + w for w in (q.to_wire() for q in queries))
        )
        answers = [_read_framed(sock) for _ in queries]
    assert [ips(a) for a in answers] == [["10.32.0.1"], ["10.32.0.2"]]


def _read_framed(sock: socket.socket) -> dns.message.Message:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    return dns.message.from_wire(exactly(int.from_bytes(exactly(2), "big")))


def test_an_idle_tcp_connection_is_closed_by_the_server(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    with socket.create_connection((HOST, stack.port), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # EOF: the server gave up on us
        assert time.monotonic() - started >= IDLE * 0.9


def test_first_upstream_silent_the_second_answers(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack([SILENT, ANSWERING], timeout=0.5)
    assert stack.call(stack.server.upstream_servers) == (SILENT, ANSWERING)
    reply = udp(stack, "example.com.")
    assert ips(reply) == [UPSTREAM_ADDR]
    assert stack.fakes[SILENT].queries == 1 and stack.fakes[ANSWERING].queries == 1


def test_an_upstream_that_truncates_is_asked_again_over_tcp(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack([TRUNCATING])
    reply = udp(stack, "example.com.")
    assert ips(reply) == [UPSTREAM_ADDR] and not reply.flags & dns.flags.TC
    fake = stack.fakes[TRUNCATING]
    assert stack.call(lambda: (fake.queries, fake.tcp_queries)) == (1, 1)


def test_all_upstreams_silent_gives_servfail_while_local_names_keep_working(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack([SILENT], timeout=1.5)
    register(stack, "web.weave.local.", 0x0A200001)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        forwarded = dns.message.make_query("example.com.", "A")
        started = time.monotonic()
        sock.sendto(forwarded.to_wire(), (HOST, stack.port))
        local = dns.message.make_query("web.weave.local.", "A")
        sock.sendto(local.to_wire(), (HOST, stack.port))
        first = dns.message.from_wire(sock.recv(4096))
        assert first.id == local.id and ips(first) == ["10.32.0.1"]
        second = dns.message.from_wire(sock.recv(4096))
        assert second.id == forwarded.id and second.rcode() == dns.rcode.SERVFAIL
        assert time.monotonic() - started >= 1.4
    assert stack.fakes[SILENT].queries == 1


def test_garbage_gets_formerr_or_nothing_and_valid_queries_keep_working(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    register(stack, "web.weave.local.", 0x0A200001)
    rng = random.Random(20261201)
    rcodes: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.settimeout(0)
        for sent in range(1, GARBAGE + 1):
            sock.sendto(rng.randbytes(rng.randrange(0, 120)), (HOST, stack.port))
            if sent % BATCH == 0:  # stay within the server's socket buffer: no drops
                _wait_for(lambda s=sent: handled(stack) >= s - BATCH, "the server stopped reading")
                rcodes += _drain(sock)
        _wait_for(lambda: handled(stack) == GARBAGE, "some datagrams were not handled")
        rcodes += _drain(sock)
    assert rcodes and set(rcodes) == {dns.rcode.FORMERR}
    stats = stack.call(lambda: stack.server.stats)
    assert stats.errors == 0 and stats.garbage > 0 and stats.formerr > 0
    assert ips(udp(stack, "web.weave.local.")) == ["10.32.0.1"]


GARBAGE = 10_000
BATCH = 100


def handled(stack: Stack) -> int:
    return stack.call(lambda: stack.server.stats.queries)


def _wait_for(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.002)


def _drain(sock: socket.socket) -> list[int]:
    rcodes = []
    while True:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return rcodes
        rcodes.append(data[3] & 0x0F)


def test_a_query_waiting_on_the_socket_is_foreground_work(tmp_path: Path) -> None:
    """Watched by the router's Foreground from start to close: the mesh's backlog lets a
    waiting query go first, and goes on once the query is answered."""
    from weavenet.io.foreground import Foreground

    async def scenario() -> tuple[bool, bool, bool, bool]:
        fg = Foreground(lambda: 0.0)  # a clock that never moves: only served() ends it
        ns = Nameserver(US, "weave.local.", Peers())
        resolver = Resolver(ResolverConfig(), ns)
        server = DnsServer(resolver, Upstream(0.5), str(tmp_path / "r"), foreground=fg)
        port = await server.start(HOST, 0)
        idle = fg.busy()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.setblocking(False)
            query = dns.message.make_query("a.weave.local.", "A").to_wire()
            client.sendto(query, (HOST, port))
            deadline = time.monotonic() + 5
            while not fg.arriving() and time.monotonic() < deadline:
                time.sleep(0.001)  # the datagram's way through loopback, loop not running
            waiting = fg.busy()
            await asyncio.wait_for(asyncio.get_running_loop().sock_recv(client, 512), 5)
            answered = fg.busy()
            await server.close()
        return idle, waiting, answered, fg.arriving()

    assert asyncio.run(scenario()) == (False, True, False, False)
