"""The plugin's HTTP/1.0 client: requests as a router reads them, answers parsed, every
transport failure a clear HttpError (and random bytes never anything else)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavenet.cni.http import HttpError, NotRunning, parse_answer, request


@contextmanager
def one_shot_server(answer: bytes | None) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that reads one request and sends `answer` (None: stays silent)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    seen: list[bytes] = []
    release = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += conn.recv(4096)
            seen.append(head + b"\r\n\r\n" + body)
            if answer is None:
                release.wait(10)
            else:
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        release.set()
        thread.join(10)
        listener.close()


def test_a_form_request_and_its_answer() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n10.32.0.5/12\n"
    with one_shot_server(answer) as (addr, seen):
        code, body = request(addr, "POST", "/ip/abc", 5.0, {"json": '{"a": 1}'})
    assert (code, body) == (200, "10.32.0.5/12\n")
    head, _, sent_body = seen[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /ip/abc HTTP/1.0\r\n")
    assert b"Content-Type: application/x-www-form-urlencoded" in head
    assert sent_body == b"json=%7B%22a%22%3A+1%7D"


def test_an_error_status_is_returned_with_its_body() -> None:
    with one_shot_server(b"HTTP/1.1 404 Not Found\r\n\r\nno such thing") as (addr, _):
        assert request(addr, "GET", "/ip/x", 5.0) == (404, "no such thing")


def test_nothing_listening_is_router_not_running() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NotRunning, match="weave launch"):
        request(f"127.0.0.1:{port}", "GET", "/status", 1.0)


def test_a_silent_router_times_out() -> None:
    with one_shot_server(None) as (addr, _), pytest.raises(HttpError) as info:
        request(addr, "GET", "/status", 0.3)
    assert info.value.timed_out


def test_a_bad_address_says_how_to_write_one() -> None:
    with pytest.raises(HttpError, match="host:port"):
        request("no-port", "GET", "/status", 1.0)


def test_a_missing_unix_socket_is_router_not_running(tmp_path: object) -> None:
    with pytest.raises(NotRunning):
        request(f"{tmp_path}/absent.sock", "GET", "/status", 1.0)


@given(st.binary(max_size=200))
def test_random_answers_parse_or_raise_http_error(raw: bytes) -> None:
    try:
        code, _ = parse_answer(raw)
    except HttpError:
        return
    assert code >= 0
