"""The IPAM HTTP routes (Go ipam/http.go) over a scripted IpamControl: paths, parameter
parsing, status codes, bodies and error texts, 404 when disabled, and cancellation of a
blocked request when its client disconnects (a real runner, as the daemon makes it)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from weavenet.api.control import IpamCancelled, IpamControl, IpamRequestFailed
from weavenet.api.http import make_app, start_http
from weavenet.api.testing import FakeRouterControl
from weavenet.core.ipam.address import CIDR, format_address
from weavenet.core.ipam.allocator import IpamError

UNIVERSE = CIDR.parse("10.32.0.0/12")


class ScriptedIpam:
    """Hands out addresses upwards from the subnet's first host; blocks while not ready."""

    def __init__(self) -> None:
        self.default_subnet = UNIVERSE
        self.ready = asyncio.Event()
        self.addresses: dict[str, list[CIDR]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.waiting = 0
        self.cancelled = 0
        self.refuse: str | None = None
        self.refuse_waiting = False

    async def _wait_ready(self) -> None:
        self.waiting += 1
        try:
            await self.ready.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.waiting -= 1

    async def allocate(self, ident: str, subnet: CIDR) -> CIDR:
        self.calls.append(("allocate", ident, str(subnet)))
        if self.refuse:
            raise IpamRequestFailed(self.refuse)
        await self._wait_ready()
        if self.refuse_waiting:
            raise IpamCancelled("cancelled")
        taken = sum(len(v) for v in self.addresses.values())
        cidr = CIDR(subnet.addr + 1 + taken, UNIVERSE.prefix_len)
        self.addresses.setdefault(ident, []).append(cidr)
        return cidr

    async def claim(self, ident: str, cidr: CIDR, no_error_on_unknown: bool) -> None:
        self.calls.append(("claim", ident, str(cidr), no_error_on_unknown))
        if self.refuse:
            raise IpamRequestFailed(self.refuse)
        if cidr.addr == 0:
            raise IpamCancelled("cancelled")
        self.addresses.setdefault(ident, []).append(cidr)

    async def prime(self) -> None:
        await self._wait_ready()

    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]:
        self.calls.append(("lookup", ident, str(subnet) if subnet else None))
        return list(self.addresses.get(ident, []))

    def owned(self) -> dict[str, list[CIDR]]:
        return {k: list(v) for k, v in self.addresses.items()}

    async def free(self, ident: str, addr: int) -> None:
        cidrs = self.addresses.get(ident, [])
        if not any(c.addr == addr for c in cidrs):
            raise IpamError(f"Free: address {format_address(addr)} not found for {ident}")
        self.addresses[ident] = [c for c in cidrs if c.addr != addr]

    async def delete(self, ident: str) -> None:
        if not self.addresses.pop(ident, None):
            raise IpamError(f"Delete: no addresses for {ident}")

    async def shutdown(self) -> None:
        self.calls.append(("shutdown",))

    async def admin_takeover(self, peer: str) -> int:
        self.calls.append(("takeover", peer))
        return 42

    def cancel_all(self) -> None:
        self.refuse_waiting = True
        self.ready.set()


Scenario = Callable[[TestClient[web.Request, web.Application], ScriptedIpam], Awaitable[None]]


def run(scenario: Scenario, enabled: bool = True) -> ScriptedIpam:
    async def main() -> ScriptedIpam:
        ipam = ScriptedIpam()
        assert isinstance(ipam, IpamControl)
        app = make_app(FakeRouterControl(), ipam if enabled else None)
        async with TestClient(TestServer(app)) as client:
            await scenario(client, ipam)
        return ipam

    return asyncio.run(main())


async def call(client: TestClient[Any, Any], method: str, path: str, **kw: Any) -> tuple[int, str]:
    resp = await client.request(method, path, **kw)
    return resp.status, await resp.text()


def test_allocate_in_default_and_given_subnet() -> None:
    async def scenario(client: TestClient[Any, Any], ipam: ScriptedIpam) -> None:
        ipam.ready.set()
        assert await call(client, "POST", "/ip/c1") == (200, "10.32.0.1/12")
        # the answer carries the prefix length of the subnet asked for
        assert await call(client, "POST", "/ip/c2/10.2.1.0/24?check-alive=true") == (
            200,
            "10.2.1.2/24",
        )

    ipam = run(scenario)
    assert ipam.calls == [("allocate", "c1", "10.32.0.0/12"), ("allocate", "c2", "10.2.1.0/24")]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/ip/c1/10.2.1.1/24", "invalid subnet - bits after network prefix are not all zero"),
        ("/ip/c1/10.2.1.0/31", "invalid subnet - smaller than minimum size 4: 10.2.1.0/31"),
        ("/ip/c1/bogus/24", "invalid CIDR address: bogus/24"),
        ("/ip/c1/10.2.1.0/33", "invalid CIDR address: 10.2.1.0/33"),
    ],
)
def test_allocate_rejects_bad_subnets_with_go_texts(path: str, message: str) -> None:
    async def scenario(client: TestClient[Any, Any], ipam: ScriptedIpam) -> None:
        resp = await client.post(path)
        assert resp.status == 400
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        body = await resp.text()
        assert body.startswith(message) and body.endswith("\n")

    assert run(scenario).calls == []


def test_allocator_errors_are_400_and_cancellation_is_200_cancelled() -> None:
    async def scenario(client: TestClient[Any, Any], ipam: ScriptedIpam) -> None:
        ipam.refuse = "range 10.2.1.0/24 out of bounds: 10.32.0.0/12"
        assert await call(client, "POST", "/ip/c1/10.2.1.0/24") == (
            400,
            "range 10.2.1.0/24 out of bounds: 10.32.0.0/12\n",
        )
        ipam.refuse = None
        assert await call(client, "PUT", "/ip/c1/0.0.0.0/12") == (200, "cancelled")

    run(scenario)


def test_claim_passes_no_error_on_unknown_and_answers_204() -> None:
    async def scenario(client: TestClient[Any, Any], ipam: ScriptedIpam) -> None:
        assert await call(client, "PUT", "/ip/c1/10.32.0.9/12") == (204, "")
        assert await call(client, "PUT", "/ip/c2/10.32.0.10/12?noErrorOnUnknown=true") == (204, "")
        form = {"noErrorOnUnknown": "true", "check-alive": "true"}
        assert await call(client, "PUT", "/ip/c3/192.168.0.1/24", data=form) == (204, "")
        ipam.refuse = "Unable to claim: address 10.32.0.9 is already owned by c1"
        assert await call(client, "PUT", "/ip/c4/10.32.0.9/12") == (400, ipam.refuse + "\n")
        # a claim takes an address, not a subnet: host bits are fine, garbage is not
        assert await call(client, "PUT", "/ip/c4/10.32.0/12") == (
            400,
            "invalid CIDR address: 10.32.0/12\n",
        )

    ipam = run(scenario)
    claims = [c for c in ipam.calls if c[0] == "claim"]
    assert claims[:3] == [
        ("claim", "c1", "10.32.0.9/12", False),
        ("claim", "c2", "10.32.0.10/12", True),
        ("claim", "c3", "192.168.0.1/24", True),
    ]


def test_lookup_and_list() -> None:
    async def scenario(client: TestClient[Any, Any], ipam: ScriptedIpam) -> None:
        assert await call(client, "GET", "/ip") == (200, '{"owned":null}\n')
        ipam.addresses["c1"] = [CIDR.parse("10.32.0.1/12"), CIDR.parse("10.32.0.7/12")]
        assert await call(client, "GET", "/ip/c1") == (200, "10.32.0.1/12 10.32.0.7/12")
        assert await call(client, "GET", "/ip/nobody") == (200, "")
        assert (await call(client, "GET", "/ip/c1/10.32.0.0/24"))[0] == 200
        assert (await call(client, "GET", "/ip/c1/10.32.0.1/24"))[0] == 400
        resp = await client.get("/ip")
        assert resp.headers["Content-Type"] == "application/json"
        assert json.loads(await resp.text()) == {
            "owned": [{"containerid": "c1", "addrs": ["10.32.0.1/12", "10.32.0.7/12"]}]
        }

    ipam = run(scenario)
    lookups = [c for c in ipam.calls if c[0] == "lookup"]
    assert lookups[0] == ("lookup", "c1", None)
    assert ("lookup", "c1", "10.32.0.0/24") in lookups


def test_free_and_delete_with_go_texts() -> None:
    async def scenario(client: TestClient[Any, Any], ipam: ScriptedIpam) -> None:
        ipam.addresses["c1"] = [CIDR.parse("10.32.0.1/12"), CIDR.parse("10.32.0.2/12")]
        assert await call(client, "DELETE", "/ip/c1/10.32.0.1") == (204, "")
        assert await call(client, "DELETE", "/ip/c1/10.32.0.1") == (
            400,
            "Unable to free: Free: address 10.32.0.1 not found for c1\n",
        )
        assert await call(client, "DELETE", "/ip/c1/nonsense") == (
            400,
            "invalid IP Address: nonsense\n",
        )
        assert await call(client, "DELETE", "/ip/c1") == (204, "")
        assert await call(client, "DELETE", "/ip/c1") == (400, "Delete: no addresses for c1\n")

    run(scenario)


def test_info_ring_and_peer_routes() -> None:
    async def scenario(client: TestClient[Any, Any], ipam: ScriptedIpam) -> None:
        assert await call(client, "GET", "/ipinfo/defaultsubnet") == (200, "10.32.0.0/12")
        assert await call(client, "GET", "/ipinfo/tracker") == (200, "\n")
        ring = asyncio.ensure_future(call(client, "GET", "/ring"))
        await wait_until(lambda: ipam.waiting == 1)
        assert not ring.done()  # /ring blocks until there is a ring
        ipam.ready.set()
        assert await ring == (200, "")
        assert await call(client, "DELETE", "/peer") == (204, "")
        assert await call(client, "DELETE", "/peer/host3") == (
            200,
            "42 IPs taken over from host3\n",
        )

    ipam = run(scenario)
    assert ("shutdown",) in ipam.calls and ("takeover", "host3") in ipam.calls


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/ip/c1"),
        ("POST", "/ip/c1/10.2.1.0/24"),
        ("PUT", "/ip/c1/10.2.1.1/24"),
        ("GET", "/ip/c1"),
        ("GET", "/ip/c1/10.2.1.0/24"),
        ("GET", "/ip"),
        ("DELETE", "/ip/c1/10.2.1.1"),
        ("DELETE", "/ip/c1"),
        ("GET", "/ipinfo/defaultsubnet"),
        ("GET", "/ipinfo/tracker"),
        ("GET", "/ring"),
    ],
)
def test_every_ipam_route_is_404_when_disabled(method: str, path: str) -> None:
    async def scenario(client: TestClient[Any, Any], ipam: ScriptedIpam) -> None:
        assert await call(client, method, path) == (404, "404 page not found\n")

    run(scenario, enabled=False)


def test_peer_routes_without_ipam_do_nothing_as_go() -> None:
    async def scenario(client: TestClient[Any, Any], ipam: ScriptedIpam) -> None:
        assert await call(client, "DELETE", "/peer") == (204, "")
        assert await call(client, "DELETE", "/peer/host3") == (200, "")

    assert run(scenario, enabled=False).calls == []


async def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_a_client_that_disconnects_cancels_its_blocked_allocation() -> None:
    """With the runner start_http makes (handler_cancellation=True), aiohttp cancels the
    handler when the client goes away; without it the allocation would wait forever."""

    async def main() -> ScriptedIpam:
        ipam = ScriptedIpam()
        runner = await start_http(make_app(FakeRouterControl(), ipam), "127.0.0.1:0")
        try:
            host, port = runner.addresses[0][:2]
            _, writer = await asyncio.open_connection(host, port)
            writer.write(f"POST /ip/c1 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            await wait_until(lambda: ipam.waiting == 1)
            writer.close()
            await wait_until(lambda: ipam.cancelled == 1)
            assert ipam.waiting == 0 and ipam.addresses == {}
        finally:
            await runner.cleanup()
        return ipam

    asyncio.run(main())


def test_idents_with_slashes_arrive_whole_when_percent_encoded() -> None:
    """The CLI's idents include paths (``netns:/var/run/netns/c1``); it quotes them."""

    async def scenario(client: TestClient[Any, Any], ipam: ScriptedIpam) -> None:
        ipam.ready.set()
        path = URL("/ip/netns:%2Fvar%2Frun%2Fnetns%2Fc1/10.2.1.0/24", encoded=True)
        assert (await client.post(path)).status == 200
        assert (
            await client.get(URL("/ip/netns:%2Fvar%2Frun%2Fnetns%2Fc1", encoded=True))
        ).status == 200

    ipam = run(scenario)
    assert ipam.calls[0] == ("allocate", "netns:/var/run/netns/c1", "10.2.1.0/24")
    assert ipam.calls[1] == ("lookup", "netns:/var/run/netns/c1", None)


def test_stopping_the_server_answers_blocked_allocations_at_once() -> None:
    """aiohttp waits up to a minute for running handlers when it shuts down; the IPAM
    routes cancel the waiting requests first, so `weave stop` is not held up."""

    async def main() -> tuple[bytes, ScriptedIpam]:
        ipam = ScriptedIpam()
        runner = await start_http(make_app(FakeRouterControl(), ipam), "127.0.0.1:0")
        host, port = runner.addresses[0][:2]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"POST /ip/c1 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        await wait_until(lambda: ipam.waiting == 1)
        await asyncio.wait_for(runner.cleanup(), 10)
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return answer, ipam

    answer, ipam = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\ncancelled")
    assert ipam.refuse_waiting and ipam.waiting == 0
