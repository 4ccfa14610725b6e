"""HTTP/1.1 relaying between Docker clients and the daemon, over asyncio streams.

Every request gets its own upstream connection (as Weave's proxy dials per request). A
request nobody intercepts is relayed as it comes: the body streamed in either framing,
the response streamed as the daemon sends it (``docker logs -f``, ``wait``, events,
archives of any size). A response that switches protocol (``101 UPGRADED`` for attach
and exec) or is a raw stream (``application/vnd.docker.raw-stream``) turns the two
connections into a byte pipe in both directions until the daemon's side ends.

An intercepted request (``Interceptor``) is read whole, may be rewritten or refused, and
its (small) response is read whole and may be rewritten before it goes back.

A client that goes away mid-stream closes that exchange's upstream connection and
nothing else; malformed HTTP gets a 400 and the connection is closed.

This module holds the shapes interceptors see and ``Relay``, the connection handler.
The HTTP/1.1 engine (weavenet.proxy.http1, h11) is imported with the first client
connection: a router whose proxy is never used never loads h11.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import msgspec

if TYPE_CHECKING:
    from weavenet.proxy.http1 import Http1Relay

Headers = list[tuple[bytes, bytes]]
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Dial = Callable[[], Awaitable[Streams]]


class Request(msgspec.Struct):
    method: str
    target: str
    headers: Headers

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query


class Reply(msgspec.Struct):
    status: int
    headers: Headers
    body: bytes = b""
    reason: bytes = b""

    def json(self) -> object:
        return json.loads(self.body)


def error_reply(status: int, message: str) -> Reply:
    """Docker's error shape: the client prints "Error response from daemon: <message>"."""
    body = json.dumps({"message": message}).encode() + b"\n"
    return Reply(status, [(b"Content-Type", b"application/json")], body)


class Interceptor(Protocol):
    async def on_request(self, req: Request, body: bytes) -> bytes | Reply:
        """The body to send on, or a Reply that answers the client instead."""
        ...

    async def on_response(self, req: Request, reply: Reply) -> Reply: ...


Route = Callable[[Request], Interceptor | None]


class Relay:
    """Serves client connections (``serve`` is an asyncio server's callback)."""

    def __init__(self, dial: Dial, route: Route) -> None:
        self.dial = dial
        self.route = route
        self.connections: set[asyncio.Task[object]] = set()
        self._http1: Http1Relay | None = None

    @property
    def exchanges(self) -> int:
        """Requests relayed (for tests and metrics)."""
        return 0 if self._http1 is None else self._http1.exchanges

    def close(self) -> None:
        """Drop every client connection (the router is stopping)."""
        for task in list(self.connections):
            task.cancel()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection, request after request, until either side closes."""
        task = asyncio.current_task()
        if task is not None:  # held until it ends: asyncio keeps only weak references
            self.connections.add(task)
            task.add_done_callback(self.connections.discard)
        await self._engine().serve(reader, writer)

    def _engine(self) -> Http1Relay:
        if self._http1 is None:
            from weavenet.proxy.http1 import Http1Relay  # h11: on the first connection

            self._http1 = Http1Relay(self.dial, self.route)
        return self._http1
