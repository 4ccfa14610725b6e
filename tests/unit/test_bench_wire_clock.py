"""bench/wire_clock.py: latencies by the kernel's stamps on the probe's socket (loopback
servers made here, in threads)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.unit.bench_modules import load_bench

wire_clock = load_bench("wire_clock")
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
Server = tuple[socket.socket, list[threading.Thread]]
DELAY = 0.05  # the server's own latency, which the stamps must see


def _serve_once(
    listener: socket.socket, reply: bytes, close_after: bool, delay: float = DELAY
) -> None:
    conn, _ = listener.accept()
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        time.sleep(delay)  # the latency under test, not a synchronisation
        conn.sendall(reply)
        if not close_after:
            conn.recv(1)  # until the client closes: a keep-alive server


@pytest.fixture
def server() -> Iterator[Server]:
    listener = socket.create_server(("127.0.0.1", 0))
    threads: list[threading.Thread] = []
    yield listener, threads
    for thread in threads:
        thread.join(timeout=10)
    listener.close()


def _get(server: Server, reply: bytes, close: bool) -> object:
    listener, threads = server
    thread = threading.Thread(target=_serve_once, args=(listener, reply, close), daemon=True)
    thread.start()
    threads.append(thread)
    with wire_clock.keep_stamping():
        return wire_clock.http_get(*listener.getsockname()[:2], "/status", timeout=10)


@pytest.mark.parametrize(
    ("reply", "close"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", False),
        (CHUNKED, False),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", True),
    ],
    ids=["content-length", "chunked", "until-close"],
)
def test_a_reply_is_read_whole_and_timed_by_the_kernel(
    server: Server, reply: bytes, close: bool
) -> None:
    got = _get(server, reply, close)
    assert (got.status, got.body) == (200, b"hello")
    assert got.stamped
    assert DELAY <= got.seconds <= got.thread_seconds


def test_waiting_for_a_reply_costs_the_probe_no_cpu(server: Server) -> None:
    # a TX stamp on the error queue makes poll() report POLLERR: a socket that polled
    # for data without draining it would spin for the whole wait
    listener, threads = server
    slow = 0.3
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    thread = threading.Thread(target=_serve_once, args=(listener, reply, False, slow))
    thread.start()
    threads.append(thread)
    cpu = time.thread_time()
    with wire_clock.keep_stamping():
        got = wire_clock.http_get(*listener.getsockname()[:2], "/", timeout=10)
    assert got.stamped and got.seconds >= slow
    assert time.thread_time() - cpu < slow / 3


def test_a_reply_cut_short_is_an_error(
    server: Server,
) -> None:
    with pytest.raises(ValueError, match="closed before a whole reply"):
        _get(server, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello", True)


def test_a_dns_exchange_waits_for_its_own_reply_and_is_stamped() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dns:
        dns.bind(("127.0.0.1", 0))

        def answer() -> None:
            query, client = dns.recvfrom(512)
            dns.sendto(b"someone else's", client)
            time.sleep(DELAY)
            dns.sendto(b"re:" + query, client)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with wire_clock.keep_stamping():
            reply, seconds = wire_clock.dns_exchange(
                b"q1", dns.getsockname(), 10, lambda wire: wire.startswith(b"re:")
            )
        thread.join(timeout=10)
    assert reply == b"re:q1"
    assert seconds >= DELAY


def test_no_reply_is_a_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(TimeoutError):
            wire_clock.dns_exchange(b"q", silent.getsockname(), 0.05, lambda wire: True)
