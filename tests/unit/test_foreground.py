"""Foreground work before the mesh's backlog: arrivals seen on watched sockets, a CPU
budget, handlers' begin/end, the inbox standing aside, and the HTTP API's wiring."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from weavenet.api.http import listening_socket, start_http
from weavenet.io.foreground import DNS_BUDGET, HTTP_BUDGET, Foreground
from weavenet.io.mesh_inbox import SLICE, Inbox


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


def _connect(listener: socket.socket) -> socket.socket:
    # the kernel completes the handshake from the listen backlog: nobody accepts yet
    return socket.create_connection(listener.getsockname()[:2], timeout=5)


def test_a_pending_connection_is_arriving_work_for_its_budget(listener: socket.socket) -> None:
    clock = Clock()
    fg = Foreground(clock)
    fg.watch(listener)
    assert not fg.busy()
    client = _connect(listener)
    try:
        assert fg.arriving() and fg.busy()
        conn, _ = listener.accept()  # the server took it: what is left is the budget
        clock.now += HTTP_BUDGET / 2
        assert not fg.arriving() and fg.busy()
        clock.now += HTTP_BUDGET
        assert not fg.busy()
        conn.close()
    finally:
        client.close()


def test_handlers_hold_it_until_the_last_ends_within_the_budget() -> None:
    clock = Clock()
    fg = Foreground(clock)
    fg.begin()
    fg.begin()
    fg.end()
    assert fg.busy()  # one handler still runs
    fg.end()
    assert not fg.busy()  # the last one ended: no need to wait out the budget
    fg.begin()
    clock.now += HTTP_BUDGET * 1.01
    assert not fg.busy()  # a handler waiting on something else does not starve the mesh
    fg.end()
    fg.end()  # more ends than begins change nothing
    fg.begin()
    assert fg.busy()


def test_a_socket_closed_while_watched_is_forgotten(listener: socket.socket) -> None:
    fg = Foreground(Clock())
    other = socket.create_server(("127.0.0.1", 0))
    fg.watch(other)
    other.close()  # without unwatch: poll says POLLNVAL
    assert not fg.arriving()
    fg.watch(listener)
    client = _connect(listener)
    try:
        assert fg.arriving()
        fg.close()
        assert not fg.arriving()
    finally:
        client.close()


class Feeds:
    """The inbox's collaborator: records feeds and runs, costs CPU on the shared clock."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fg: Foreground, clock: Clock) -> None:
        self.events: list[object] = []
        self.clock = clock
        self.inbox = Inbox(loop, self.feed, lambda: None, clock, foreground=fg)

    def feed(self, conn_id: int, data: bytes) -> None:
        self.clock.now += SLICE / 4
        self.events.append(conn_id)


class NoTransport:
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def is_closing(self) -> bool:
        return False


def test_the_inbox_stands_aside_while_a_handler_runs(loop: asyncio.AbstractEventLoop) -> None:
    clock = Clock()
    fg = Foreground(clock)
    feeds = Feeds(loop, fg, clock)
    for conn_id in range(1, 4):
        feeds.inbox.put(conn_id, b"m", NoTransport())  # type: ignore[arg-type]
    fg.begin()

    async def handler_turns() -> None:
        for turn in range(5):
            feeds.events.append(f"turn{turn}")
            await asyncio.sleep(0)
        fg.end()
        while feeds.inbox.pending():
            await asyncio.sleep(0)

    loop.run_until_complete(handler_turns())
    assert feeds.events[:5] == [f"turn{t}" for t in range(5)]  # no feed in between
    assert feeds.events[5:] == [1, 2, 3]
    assert fg.yields >= 5


def test_an_arrival_ends_the_slice_it_comes_in(
    loop: asyncio.AbstractEventLoop, listener: socket.socket
) -> None:
    clock = Clock()
    fg = Foreground(clock)
    fg.watch(listener)
    feeds = Feeds(loop, fg, clock)
    clients: list[socket.socket] = []

    def feed_then_connect(conn_id: int, data: bytes) -> None:
        Feeds.feed(feeds, conn_id, data)
        if conn_id == 1:
            clients.append(_connect(listener))  # a request arrives during this message

    feeds.inbox = Inbox(loop, feed_then_connect, lambda: None, clock, foreground=fg)
    for conn_id in range(1, 4):
        feeds.inbox.put(conn_id, b"m", NoTransport())  # type: ignore[arg-type]

    async def accept_later() -> None:
        await asyncio.sleep(0)  # the slice runs first, and stops after message 1
        feeds.events.append("accept")
        conn, _ = listener.accept()
        conn.close()
        clock.now += HTTP_BUDGET  # the request's turns used the budget
        while feeds.inbox.pending():
            await asyncio.sleep(0)

    try:
        loop.run_until_complete(accept_later())
    finally:
        for client in clients:
            client.close()
    assert feeds.events == [1, "accept", 2, 3]  # two more would have fit in the slice


def test_the_api_is_watched_and_its_handlers_hold_the_mesh(tmp_path: object) -> None:
    async def scenario() -> list[bool]:
        fg = Foreground()
        seen: list[bool] = []

        async def probe(_request: web.Request) -> web.Response:
            seen.append(fg.busy())
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/probe", probe)
        runner = await start_http(app, "127.0.0.1:0", fg)
        host, port = runner.addresses[0][:2]
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = await reader.read()
            writer.close()
            assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"ok")
            seen.append(fg.busy())  # the handler ended: nothing held any more
        finally:
            fg.close()
            await runner.cleanup()
        return seen

    assert asyncio.run(scenario()) == [True, False]


def test_listening_sockets(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "api.sock"
    unix = listening_socket(str(path))
    try:
        assert unix.family == socket.AF_UNIX and unix.getsockname() == str(path)
    finally:
        unix.close()
    unix = listening_socket(str(path))  # a stale socket file is replaced
    unix.close()
    tcp = listening_socket("127.0.0.1:0")
    try:
        assert tcp.getsockname()[0] == "127.0.0.1" and tcp.getsockname()[1] > 0
    finally:
        tcp.close()
    anywhere = listening_socket(":0")
    try:
        assert anywhere.family in (socket.AF_INET, socket.AF_INET6)
    finally:
        anywhere.close()
    with pytest.raises(ValueError, match="invalid listen address"):
        listening_socket("nowhere")


def test_a_drained_datagram_socket_ends_the_wait_unless_a_handler_runs() -> None:
    clock = Clock()
    fg = Foreground(clock)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        fg.watch(server, DNS_BUDGET)
        client.sendto(b"q", server.getsockname())
        deadline = time.monotonic() + 5
        while not fg.arriving() and time.monotonic() < deadline:
            time.sleep(0.001)  # loopback delivery
        assert fg.busy()
        server.recv(16)
        fg.served()
        assert not fg.busy()  # answered: no budget left to wait out
        fg.begin()
        fg.served()
        assert fg.busy()  # an HTTP handler still runs
    finally:
        server.close()
        client.close()


def test_the_overlays_news_waits_for_a_request_and_is_then_delivered_once() -> None:
    import random

    from weavenet.core.mesh.router import Router, RouterConfig
    from weavenet.io.mesh_tcp import MeshShell

    async def scenario() -> tuple[list[set[int]], list[set[int]]]:
        router = Router(RouterConfig(name=0x0200000000AA, nickname="t"), random.Random(1), 0.0)
        mesh = MeshShell(router, "127.0.0.1", 0, lambda targets: None)
        heard: list[set[int]] = []
        router.overlay_activity = lambda names, now: heard.append(set(names))  # type: ignore[method-assign]
        mesh.foreground.begin()  # a request is being served
        mesh.overlay_activity({1})
        mesh.overlay_activity({2})
        for _ in range(3):
            await asyncio.sleep(0)
        during = list(heard)
        mesh.foreground.end()
        for _ in range(3):
            await asyncio.sleep(0)
        return during, heard

    during, after = asyncio.run(scenario())
    assert during == [] and after == [{1, 2}]
