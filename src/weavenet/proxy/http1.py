"""The proxy's HTTP/1.1 engine over asyncio streams, with h11 (see weavenet.proxy.relay,
which imports this module when the proxy gets its first client connection)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import h11
import msgspec

from weavenet.proxy.relay import Dial, Headers, Reply, Request, Route, error_reply

log = logging.getLogger("weavenet.proxy")

CHUNK = 64 * 1024
MAX_HEAD = 1024 * 1024  # Docker puts registry credentials in headers
MAX_INTERCEPTED_BODY = 16 * 1024 * 1024
RAW_STREAM = b"application/vnd.docker.raw-stream"


class ClientGone(Exception):
    """The client closed its connection or reset it."""


class Peer(msgspec.Struct):
    """One side of an exchange: its streams and its h11 state machine."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: h11.Connection
    gone: bool = False

    async def next_event(self) -> object:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(await self.reader.read(CHUNK))

    async def send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def _framing(headers: Headers, length: int) -> Headers:
    drop = (b"content-length", b"transfer-encoding")
    kept = [(k, v) for k, v in headers if k.lower() not in drop]
    return [*kept, (b"Content-Length", str(length).encode())]


def _header(headers: Headers, name: bytes) -> bytes:
    return next((v for k, v in headers if k.lower() == name), b"")


def _raw_head(status: int, reason: bytes, headers: Headers) -> bytes:
    lines = [b"HTTP/1.1 %d %s" % (status, reason or b"OK")]
    lines += [k + b": " + v for k, v in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _with_host(headers: Headers) -> Headers:
    """Exactly one Host header (Docker's hijacking client sends two; h11 wants one)."""
    hosts = [(k, v) for k, v in headers if k.lower() == b"host"]
    rest = [(k, v) for k, v in headers if k.lower() != b"host"]
    return [hosts[0] if hosts else (b"Host", b"docker"), *rest]


class Http1Relay:
    """Relays the requests of client connections to the daemon, one exchange at a time."""

    def __init__(self, dial: Dial, route: Route) -> None:
        self.dial = dial
        self.route = route
        self.exchanges = 0  # requests relayed

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection, request after request, until either side closes."""
        down = Peer(reader, writer, h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD))
        try:
            await self._serve(down)
        except h11.RemoteProtocolError as exc:
            log.info("proxy: malformed request from client: %s", exc)
            with contextlib.suppress(Exception):
                await self._reply(down, error_reply(400, f"malformed HTTP request: {exc}"))
        except (ClientGone, ConnectionError, h11.LocalProtocolError) as exc:
            log.debug("proxy: client connection ended: %r", exc)
        except OSError as exc:
            log.info("proxy: client connection failed: %s", exc)
        finally:
            down.close()

    async def _serve(self, down: Peer) -> None:
        while True:
            event = await down.next_event()
            if not isinstance(event, h11.Request):
                return  # closed (or a protocol switch already handled)
            self.exchanges += 1
            req = Request(
                event.method.decode(), event.target.decode(), list(event.headers.raw_items())
            )
            if down.conn.client_is_waiting_for_100_continue:
                await down.send(h11.InformationalResponse(status_code=100, headers=[]))
            if not await self._exchange(down, req):
                return
            if down.conn.our_state is not h11.DONE or down.conn.their_state is not h11.DONE:
                return
            down.conn.start_next_cycle()

    async def _exchange(self, down: Peer, req: Request) -> bool:
        """Relay one request; False if the client connection is finished."""
        interceptor = self.route(req)
        if interceptor is None:
            return await self._pass_through(down, req)
        body = await self._read_body(down)
        try:
            result = await interceptor.on_request(req, body)
            if not isinstance(result, Reply):
                result = await interceptor.on_response(req, await self._round_trip(req, result))
        except Exception as exc:  # a bug of ours answers 500, it does not end the proxy
            log.exception("proxy: %s %s failed", req.method, req.path)
            result = error_reply(500, f"weave proxy: {exc}")
        await self._reply(down, result)
        return True

    async def _read_body(self, down: Peer) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            event = await down.next_event()
            if isinstance(event, h11.EndOfMessage):
                return b"".join(parts)
            if not isinstance(event, h11.Data):
                raise ClientGone(f"request body ended early: {event!r}")
            size += len(event.data)
            if size > MAX_INTERCEPTED_BODY:
                raise h11.RemoteProtocolError("request body too large for the proxy")
            parts.append(event.data)

    async def _reply(self, down: Peer, reply: Reply) -> None:
        headers = _framing(reply.headers, len(reply.body))
        await down.send(
            h11.Response(status_code=reply.status, headers=headers, reason=reply.reason)
        )
        if reply.body:
            await down.send(h11.Data(data=reply.body))
        await down.send(h11.EndOfMessage())

    async def _connect(self) -> Peer:
        reader, writer = await self.dial()
        return Peer(reader, writer, h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD))

    async def _round_trip(self, req: Request, body: bytes) -> Reply:
        """Send one whole request upstream and read its whole response."""
        try:
            up = await self._connect()
        except OSError as exc:
            log.warning("proxy: cannot reach the Docker daemon: %s", exc)
            return error_reply(500, f"Could not connect to target: {exc}")
        try:
            headers = _framing(_with_host(req.headers), len(body))
            await up.send(h11.Request(method=req.method, target=req.target, headers=headers))
            await up.send(h11.Data(data=body))
            await up.send(h11.EndOfMessage())
            response = await self._response_head(up)
            if not isinstance(response, h11.Response):
                return error_reply(500, "the Docker daemon switched protocols unexpectedly")
            parts = []
            while isinstance(event := await up.next_event(), h11.Data):
                parts.append(event.data)
            headers = list(response.headers.raw_items())
            return Reply(response.status_code, headers, b"".join(parts), response.reason)
        except (h11.ProtocolError, OSError) as exc:
            return error_reply(500, f"Could not make request to target: {exc}")
        finally:
            up.close()

    async def _response_head(self, up: Peer) -> object:
        """The response head, skipping 100 Continue (a 101 is returned as it is)."""
        while True:
            event = await up.next_event()
            if not isinstance(event, h11.InformationalResponse) or event.status_code == 101:
                return event

    async def _pass_through(self, down: Peer, req: Request) -> bool:
        try:
            up = await self._connect()
        except OSError as exc:
            log.warning("proxy: cannot reach the Docker daemon: %s", exc)
            await self._reply(down, error_reply(500, f"Could not connect to target: {exc}"))
            return False  # the request body (if any) was not read
        try:
            return await self._relay(down, up, req)
        except (h11.ProtocolError, OSError) as exc:
            if down.gone:
                raise ClientGone(str(exc)) from exc
            log.info("proxy: %s %s: upstream failed: %s", req.method, req.path, exc)
            return False
        finally:
            up.close()

    async def _relay(self, down: Peer, up: Peer, req: Request) -> bool:
        await up.send(
            h11.Request(method=req.method, target=req.target, headers=_with_host(req.headers))
        )
        await self._stream_request_body(down, up)
        head = await self._response_head(up)
        if isinstance(head, h11.InformationalResponse):  # 101: attach, exec start
            await self._pipe(
                down, up, head.status_code, head.reason, list(head.headers.raw_items())
            )
            return False
        if not isinstance(head, h11.Response):
            raise h11.RemoteProtocolError(f"no response from the daemon: {head!r}")
        headers = list(head.headers.raw_items())
        if _header(headers, b"content-type") == RAW_STREAM:
            await self._pipe(down, up, head.status_code, head.reason, headers)
            return False
        await down.send(
            h11.Response(status_code=head.status_code, headers=headers, reason=head.reason)
        )
        return await self._stream_response_body(down, up)

    async def _stream_request_body(self, down: Peer, up: Peer) -> None:
        while True:
            event = await down.next_event()
            if isinstance(event, h11.Data | h11.EndOfMessage):
                await up.send(event)
            if isinstance(event, h11.EndOfMessage):
                return
            if not isinstance(event, h11.Data):
                raise ClientGone(f"request body ended early: {event!r}")

    async def _stream_response_body(self, down: Peer, up: Peer) -> bool:
        """Copy the daemon's body to the client as it comes, while watching the client:
        if it goes away, the upstream connection is dropped at once."""
        watch = asyncio.create_task(self._watch_client(down, up))
        try:
            while True:
                event = await up.next_event()
                if down.gone:
                    raise ClientGone("client closed its connection")
                if isinstance(event, h11.Data | h11.EndOfMessage):
                    await down.send(event)
                if isinstance(event, h11.EndOfMessage):
                    return True
                if not isinstance(event, h11.Data):
                    raise h11.RemoteProtocolError(f"daemon's body ended early: {event!r}")
        except ConnectionError as exc:
            raise ClientGone(str(exc)) from exc
        finally:
            watch.cancel()  # and wait: the next request is read from the same stream
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch

    async def _watch_client(self, down: Peer, up: Peer) -> None:
        while data := await down.reader.read(CHUNK):
            down.conn.receive_data(data)  # a pipelined request: kept for the next cycle
        down.gone = True
        up.writer.transport.abort()

    async def _pipe(
        self, down: Peer, up: Peer, status: int, reason: bytes, headers: Headers
    ) -> None:
        """A hijacked connection: the head as the daemon sent it, then bytes both ways."""
        down.writer.write(_raw_head(status, reason, headers))
        pending_down, _ = down.conn.trailing_data
        pending_up, _ = up.conn.trailing_data
        if pending_down:
            up.writer.write(pending_down)
        if pending_up:
            down.writer.write(pending_up)
        to_client = asyncio.create_task(_copy(up.reader, down.writer))
        to_daemon = asyncio.create_task(_copy(down.reader, up.writer))
        tasks = {to_client, to_daemon}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if not to_client.done() and to_daemon.result():
                await to_client  # the client closed its input: the output goes on to the end
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Copy until EOF, then half-close the other side (as Weave's copyStream). False if
    the source failed (reset); the destination going away just ends the copy."""
    try:
        while data := await reader.read(CHUNK):
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                return True
    except OSError:
        return False
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()
    return True
