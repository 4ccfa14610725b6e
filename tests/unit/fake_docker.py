"""A fake Docker daemon on a unix socket, for the proxy's relay tests (it is a fixture,
not the thing under test). Each request goes to `handler(method, target, headers, body)`,
which returns a `Canned` answer: a status, headers and body chunks (sent as they come,
chunked unless a Content-Length is given), or `hijack=True` for a 101 upgrade after which
the fake upper-cases every byte it gets until the client half-closes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import h11

Headers = list[tuple[bytes, bytes]]


@dataclass
class Canned:
    status: int = 200
    headers: Headers = field(default_factory=list)
    chunks: list[bytes] | Callable[[], AsyncIterator[bytes]] = field(default_factory=list)
    hijack: bool = False


@dataclass
class Seen:
    method: str
    target: str
    headers: Headers
    body: bytes


Handler = Callable[[Seen], Canned]


class FakeDocker:
    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.seen: list[Seen] = []
        self.server: asyncio.Server | None = None
        self.closed_streams = 0  # streaming answers cut short by the client going away

    async def __aenter__(self) -> FakeDocker:
        self.server = await asyncio.start_unix_server(self._serve, self.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Seen:
        head: h11.Request | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                hdrs = list(head.headers.raw_items())
                return Seen(head.method.decode(), head.target.decode(), hdrs, body)
            else:
                raise ConnectionError(f"fake: {event!r}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            seen = await self._read_request(conn, reader)
            self.seen.append(seen)
            canned = self.handler(seen)
            if canned.hijack:
                await self._hijack(reader, writer, canned)
            else:
                await self._answer(conn, writer, canned)
        except (ConnectionError, h11.ProtocolError):
            self.closed_streams += 1
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, conn: h11.Connection, writer: asyncio.StreamWriter, c: Canned) -> None:
        writer.write(conn.send(h11.Response(status_code=c.status, headers=c.headers)) or b"")
        chunks = c.chunks() if callable(c.chunks) else _aiter(c.chunks)
        async for chunk in chunks:
            writer.write(conn.send(h11.Data(data=chunk)) or b"")
            await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()

    async def _hijack(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, c: Canned
    ) -> None:
        writer.write(
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
        for chunk in c.chunks if isinstance(c.chunks, list) else []:
            writer.write(chunk)
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
        writer.write(b"BYE")
        await writer.drain()


async def _aiter(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
