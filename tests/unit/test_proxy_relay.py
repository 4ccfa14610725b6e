"""The proxy's relay and interceptors against a fake daemon on a unix socket: requests,
errors, chunked bodies of any size and hijacked streams pass through; a client that goes
away mid-stream drops only its exchange; create and start are rewritten and wired."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import os
import random
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.unit.fake_docker import Canned, FakeDocker, Seen
from weavenet.core.attachments import Attachment, AttachmentError, AttachRequest
from weavenet.core.ipam.address import CIDR
from weavenet.proxy import intercept
from weavenet.proxy.relay import Relay, Reply, Request
from weavenet.proxy.rules import Json, ProxySettings
from weavenet.proxy.service import dialer
from weavenet.proxy.wiring import Wiring

JSON = [(b"Content-Type", b"application/json")]
DEADLINE = 10.0


async def _until(check: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not check():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


class Setup:
    def __init__(self, tmp: Path, handler: Callable[[Seen], Canned], route: Any = None) -> None:
        self.fake = FakeDocker(str(tmp / "docker.sock"), handler)
        self.proxy_path = str(tmp / "weave.sock")
        self.relay = Relay(dialer(f"unix://{self.fake.path}"), route or (lambda req: None))

    async def __aenter__(self) -> Setup:
        await self.fake.__aenter__()
        self.server = await asyncio.start_unix_server(self.relay.serve, self.proxy_path)
        self.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(self.proxy_path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        self.server.close()
        await self.fake.__aexit__()

    async def raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_unix_connection(self.proxy_path)


def run(test: Callable[[Path], Awaitable[None]]) -> None:
    with tempfile.TemporaryDirectory(prefix="dx-") as tmp:
        asyncio.run(asyncio.wait_for(test(Path(tmp)), 60))


def test_requests_and_errors_pass_through_unchanged() -> None:
    def handler(seen: Seen) -> Canned:
        if seen.target.startswith("/v1.41/containers/nope"):
            body = json.dumps({"message": "No such container: nope"}).encode()
            return Canned(404, [*JSON, (b"Content-Length", str(len(body)).encode())], [body])
        return Canned(200, [(b"Content-Length", b"2"), (b"Api-Version", b"1.41")], [b"OK"])

    async def test(tmp: Path) -> None:
        async with Setup(tmp, handler) as s:
            async with s.session.get("http://docker/_ping") as resp:
                assert (resp.status, await resp.text()) == (200, "OK")
                assert resp.headers["Api-Version"] == "1.41"
            url = "http://docker/v1.41/containers/nope/json?size=1"
            async with s.session.get(url) as resp:
                assert resp.status == 404
                assert (await resp.json())["message"] == "No such container: nope"
            assert [x.target for x in s.fake.seen] == [
                "/_ping",
                "/v1.41/containers/nope/json?size=1",
            ]

    run(test)


def test_chunked_bodies_of_any_size_pass_both_ways() -> None:
    rng = random.Random(9)
    upload = rng.randbytes(5 * 1024 * 1024 + 17)
    download = rng.randbytes(3 * 1024 * 1024 + 5)
    cuts = sorted(rng.sample(range(1, len(download)), 6))
    pieces = [download[a:b] for a, b in zip([0, *cuts], [*cuts, len(download)], strict=True)]

    def handler(seen: Seen) -> Canned:
        if seen.method == "PUT":
            digest = hashlib.sha256(seen.body).hexdigest().encode()
            return Canned(200, [(b"Content-Length", b"64")], [digest])
        return Canned(200, [(b"Content-Type", b"application/x-tar")], pieces)

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(upload), 100_000):
            yield upload[i : i + 100_000]

    async def test(tmp: Path) -> None:
        async with Setup(tmp, handler) as s:
            url = "http://docker/v1.41/containers/c/archive?path=/tmp"
            async with s.session.put(url, data=body()) as resp:
                assert await resp.text() == hashlib.sha256(upload).hexdigest()
            async with s.session.get(url) as resp:
                assert await resp.read() == download

    run(test)


def test_hijacked_attach_is_a_byte_pipe() -> None:
    def handler(seen: Seen) -> Canned:
        return Canned(hijack=True, chunks=[b"early:"])

    async def test(tmp: Path) -> None:
        async with Setup(tmp, handler) as s:
            reader, writer = await s.raw()
            writer.write(
                b"POST /v1.41/containers/c/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\n"
                b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\nfirst-"
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
            assert b"application/vnd.docker.raw-stream" in head
            writer.write(b"hello")
            await writer.drain()
            writer.write_eof()
            assert await reader.read() == b"early:FIRST-HELLOBYE"
            writer.close()

    run(test)


def test_a_client_gone_mid_stream_drops_only_its_exchange() -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"log line\n"
            await asyncio.sleep(0.01)

    def handler(seen: Seen) -> Canned:
        if "logs" in seen.target:
            return Canned(200, [], endless)
        return Canned(200, [(b"Content-Length", b"2")], [b"OK"])

    async def test(tmp: Path) -> None:
        async with Setup(tmp, handler) as s:
            reader, writer = await s.raw()
            writer.write(b"GET /v1.41/containers/c/logs?follow=1 HTTP/1.1\r\nHost: d\r\n\r\n")
            await reader.readuntil(b"log line\n")
            writer.transport.abort()  # the client dies without a goodbye
            await _until(lambda: s.fake.closed_streams == 1, "the upstream stream to be closed")
            async with s.session.get("http://docker/_ping") as resp:
                assert await resp.text() == "OK"

    run(test)


def test_malformed_http_gets_400_and_the_daemon_down_gets_500() -> None:
    async def test(tmp: Path) -> None:
        async with Setup(tmp, lambda seen: Canned()) as s:
            reader, writer = await s.raw()
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            assert (await reader.read()).startswith(b"HTTP/1.1 400 ")
            await s.fake.__aexit__()
            os.unlink(s.fake.path)
            async with s.session.get("http://docker/_ping") as resp:
                assert resp.status == 500
                assert "Could not connect to target" in (await resp.json())["message"]

    run(test)


# --- the interceptors, with fakes of the router and of the daemon's own answers -----------


class FakeDockerApi:
    def __init__(self, info: Json | None = None, later: Json | None = None) -> None:
        self.info = info
        self.later = later or info  # what a second inspect says
        self.inspected = 0
        self.killed: list[str] = []

    async def inspect_container(self, ident: str) -> Json | None:
        self.inspected += 1
        return self.info if self.inspected == 1 else self.later

    async def inspect_image(self, name: str) -> Json | None:
        return {"Config": {"Cmd": ["/bin/sh"], "Entrypoint": None}} if name == "busybox" else None

    async def kill(self, ident: str) -> None:
        self.killed.append(ident)


class FakeIpam:
    default_subnet = CIDR.parse("10.32.0.0/12")

    async def allocate(self, ident: str, subnet: CIDR) -> CIDR:
        return CIDR.parse("10.32.0.7/12")

    async def claim(self, ident: str, cidr: CIDR, no_error_on_unknown: bool) -> None:
        pass

    async def delete(self, ident: str) -> None:
        self.deleted.append(ident)

    def __init__(self) -> None:
        self.deleted: list[str] = []


class FakeAttacher:
    def __init__(self, fail: bool = False) -> None:
        self.requests: list[AttachRequest] = []
        self.fail = fail

    async def attach(self, req: AttachRequest) -> Attachment:
        self.requests.append(req)
        if self.fail:
            raise AttachmentError("no bridge")
        return Attachment(req.ident, req.spec, req.netns_path, "1:2", req.cidrs)

    async def detach(self, ident: str, netns: str | None, ips: Any) -> tuple[list[Any], bool]:
        return [], True

    def snapshot(self) -> dict[str, Any]:
        return {"attachments": []}


class FakeDns:
    async def ensure_subnet(self, cidr: str) -> str:
        return str(ipaddress.IPv4Network(cidr)[2])


def _wiring(attacher: FakeAttacher, ipam: FakeIpam | None = None) -> Wiring:
    settings = ProxySettings("/state/weavewait", no_rewrite_hosts=True)
    return Wiring(settings, ipam or FakeIpam(), attacher, FakeDns())


def test_create_is_rewritten_and_a_malformed_weave_cidr_refused() -> None:
    created = json.dumps({"Id": "abc", "Warnings": []}).encode()

    def handler(seen: Seen) -> Canned:
        return Canned(201, [*JSON], [created])

    async def test(tmp: Path) -> None:
        route = intercept.router(FakeDockerApi(), _wiring(FakeAttacher()))
        async with Setup(tmp, handler, route) as s:
            url = "http://docker/v1.41/containers/create?name=web"
            async with s.session.post(url, json={"Image": "busybox", "Env": ["A=1"]}) as resp:
                assert (resp.status, await resp.read()) == (201, created)
            sent = json.loads(s.fake.seen[-1].body)
            assert sent["Entrypoint"] == ["/w/w"] and sent["Cmd"] == ["/bin/sh"]
            assert (sent["Hostname"], sent["Domainname"]) == ("web", "weave.local")
            assert sent["HostConfig"]["Dns"] == ["10.32.0.2"]
            assert sent["HostConfig"]["Binds"] == ["/state/weavewait:/w:ro"]
            bad = {"Image": "busybox", "Env": ["WEAVE_CIDR=net:10.2.5"]}
            async with s.session.post(url, json=bad) as resp:
                assert resp.status == 400
                assert "invalid WEAVE_CIDR 'net:10.2.5'" in (await resp.json())["message"]
            async with s.session.post(url, json={"Image": "nothere"}) as resp:
                assert resp.status == 404
                assert (await resp.json())["message"] == "No such image: nothere"
            assert len(s.fake.seen) == 1

    run(test)


def _info() -> Json:
    return {
        "Id": "f" * 64,
        "Name": "/web",
        "State": {"Running": True, "Pid": 4242},
        "Config": {"Entrypoint": ["/w/w", "/bin/sh"], "Env": [], "Hostname": "web",
                   "Domainname": "weave.local"},
        "HostConfig": {"NetworkMode": "default"},
    }  # fmt: skip


@pytest.mark.parametrize("fail", [False, True])
def test_start_wires_the_container_before_answering(fail: bool) -> None:
    async def test(tmp: Path) -> None:
        docker, attacher = FakeDockerApi(_info()), FakeAttacher(fail)
        route = intercept.router(docker, _wiring(attacher))
        async with (
            Setup(tmp, lambda seen: Canned(204), route) as s,
            s.session.post("http://docker/v1.41/containers/web/start") as resp,
        ):
            status = resp.status
            body = await resp.read()
        (req,) = attacher.requests
        assert (req.ident, req.spec, req.netns_path) == ("f" * 64, "web", "/proc/4242/ns/net")
        assert [str(c) for c in req.cidrs] == ["10.32.0.7/12"]
        assert req.dns_name == "web.weave.local"
        if fail:
            assert status == 500 and b"no bridge" in body
            assert docker.killed == ["f" * 64]
        else:
            assert status == 204 and docker.killed == []

    run(test)


class Broken:
    async def on_request(self, req: Request, body: bytes) -> bytes:
        raise RuntimeError("a bug")

    async def on_response(self, req: Request, reply: Reply) -> Reply:
        return reply


def test_a_failing_interceptor_answers_500_and_the_proxy_goes_on() -> None:
    def route(req: Request) -> Broken | None:
        return Broken() if req.path.endswith("/create") else None

    def handler(seen: Seen) -> Canned:
        return Canned(200, [(b"Content-Length", b"2")], [b"OK"])

    async def test(tmp: Path) -> None:
        async with Setup(tmp, handler, route) as s:
            async with s.session.post("http://docker/containers/create", json={}) as resp:
                assert resp.status == 500
                assert "a bug" in (await resp.json())["message"]
            async with s.session.get("http://docker/_ping") as resp:
                assert await resp.text() == "OK"
            assert [x.target for x in s.fake.seen] == ["/_ping"]

    run(test)


def test_a_container_that_ended_during_its_attach_is_not_an_error() -> None:
    ended = {**_info(), "State": {"Running": False, "Pid": 0}}

    async def test(tmp: Path) -> None:
        docker, attacher, ipam = FakeDockerApi(_info(), ended), FakeAttacher(True), FakeIpam()
        route = intercept.router(docker, _wiring(attacher, ipam))
        async with (
            Setup(tmp, lambda seen: Canned(204), route) as s,
            s.session.post("http://docker/v1.41/containers/web/start") as resp,
        ):
            assert resp.status == 204
        assert docker.killed == []
        assert ipam.deleted == ["f" * 64]  # its address is not leaked

    run(test)
