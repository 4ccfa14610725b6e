"""The weavemesh plugin's drivers and protocol edge, against a fake of the router's IPAM."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import IpamError
from weavenet.plugin import lifecycle
from weavenet.plugin.ipam_driver import IpamDriver, PluginError, split_pool_id
from weavenet.plugin.lifecycle import PluginContainers, dns_names
from weavenet.plugin.net_driver import NetworkDriver, multicast_wanted
from weavenet.plugin.server import BAD_REQUESTS, make_app, routes

CID = "ab" * 32


class FakeIpam:
    """Addresses handed out in order from the subnet, filed by ident (as the allocator)."""

    def __init__(self) -> None:
        self.default_subnet = CIDR.parse("10.32.0.0/12")
        self.owned: dict[str, list[CIDR]] = {}

    def _taken(self) -> set[int]:
        return {c.addr for cs in self.owned.values() for c in cs}

    def _file(self, ident: str, cidr: CIDR) -> None:
        key = str(ipaddress.IPv4Address(cidr.addr)) if ident == "_" else ident
        self.owned.setdefault(key, []).append(cidr)

    async def allocate(self, ident: str, subnet: CIDR) -> CIDR:
        addr = next(a for a in range(subnet.start() + 1, subnet.end()) if a not in self._taken())
        cidr = CIDR(addr, subnet.prefix_len)
        self._file(ident, cidr)
        return cidr

    async def claim(self, ident: str, cidr: CIDR, no_error_on_unknown: bool) -> None:
        owner = self.owner(cidr.addr)
        if owner is not None:
            raise IpamError(f"address {cidr} is already owned by {owner}")
        self._file(ident, cidr)

    async def free(self, ident: str, addr: int) -> None:
        self.owned[ident] = [c for c in self.owned[ident] if c.addr != addr]
        if not self.owned[ident]:
            del self.owned[ident]

    async def transfer(self, ident: str, to_ident: str, addr: int) -> CIDR:
        cidr = next(c for c in self.owned[ident] if c.addr == addr)
        await self.free(ident, addr)
        self.owned.setdefault(to_ident, []).append(cidr)
        return cidr

    async def delete(self, ident: str) -> None:
        if ident not in self.owned:
            raise IpamError(f"Delete: no addresses for {ident}")
        del self.owned[ident]

    def owner(self, addr: int) -> str | None:
        return next((i for i, cs in self.owned.items() if any(c.addr == addr for c in cs)), None)

    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]:
        return list(self.owned.get(ident, []))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_pools_and_addresses_as_weave() -> None:
    ipam = FakeIpam()
    drv = IpamDriver(ipam)
    pool = run(drv.request_pool({"Pool": "10.40.0.0/16"}))
    assert pool == {"PoolID": "weave-10.40.0.0/16-10.40.0.0/16", "Pool": "10.40.0.0/16",
                    "Data": {"com.docker.network.gateway": "10.40.0.0/16"}}  # fmt: skip
    default = run(drv.request_pool({"Pool": ""}))
    assert default["PoolID"] == "weave-10.32.0.0/12-10.32.0.0/12"
    pid = pool["PoolID"]
    assert run(drv.request_address({"PoolID": pid, "Address": "10.40.0.1"}))["Address"] == (
        "10.40.0.1/16"
    )
    assert run(drv.request_address({"PoolID": pid}))["Address"] == "10.40.0.2/16"
    with pytest.raises(IpamError, match="already owned"):
        run(drv.request_address({"PoolID": pid, "Address": "10.40.0.2"}))
    # a container's address is kept when Docker releases it; an anonymous one is freed
    run(ipam.transfer("10.40.0.1", CID, int(ipaddress.IPv4Address("10.40.0.1"))))
    run(drv.release_address({"PoolID": pid, "Address": "10.40.0.1"}))
    run(drv.release_address({"PoolID": pid, "Address": "10.40.0.2"}))
    run(drv.release_address({"PoolID": pid, "Address": "10.40.0.0"}))  # the fake gateway
    assert list(ipam.owned) == [CID]
    # the same --ip again for that container (a restart) is accepted
    assert run(drv.request_address({"PoolID": pid, "Address": "10.40.0.1"}))["Address"] == (
        "10.40.0.1/16"
    )
    with pytest.raises(PluginError, match="Unrecognized pool ID: nope"):
        split_pool_id("nope")


def test_multicast_option_values() -> None:
    assert multicast_wanted({"works.weave.multicast": ""})
    assert multicast_wanted({"works.weave.multicast": "true"})
    assert not multicast_wanted({"works.weave.multicast": "false"})
    assert not multicast_wanted({})
    with pytest.raises(PluginError, match='unrecognized value "maybe"'):
        multicast_wanted({"works.weave.multicast": "maybe"})


def test_join_asks_for_no_gateway_and_gives_the_multicast_route() -> None:
    async def networks(driver: str) -> list[dict[str, Any]]:
        return [{"Id": "n2", "Options": {"works.weave.multicast": "true"}}]

    drv = NetworkDriver("weave", networks)
    generic = {"com.docker.network.generic": {"works.weave.multicast": ""}}
    run(drv.create_network({"NetworkID": "n1", "Options": generic}))
    run(drv.create_network({"NetworkID": "n3", "Options": {}}))
    join = run(drv.join({"NetworkID": "n1", "EndpointID": "e" * 64}))
    assert join["DisableGatewayService"] is True
    assert join["InterfaceName"] == {"SrcName": "vethwg" + "e" * 9, "DstPrefix": "ethwe"}
    assert join["StaticRoutes"] == [{"Destination": "224.0.0.0/4", "RouteType": 1}]
    assert "StaticRoutes" not in run(drv.join({"NetworkID": "n3", "EndpointID": "e" * 64}))
    assert "StaticRoutes" not in run(drv.join({"NetworkID": "n2", "EndpointID": "e" * 64}))
    run(drv.learn_networks())  # networks made while we were down
    assert "StaticRoutes" in run(drv.join({"NetworkID": "n2", "EndpointID": "e" * 64}))


def test_bad_json_gets_a_json_error_and_the_server_goes_on() -> None:
    async def case() -> None:
        async def networks(driver: str) -> list[dict[str, Any]]:
            return []

        app = make_app(routes(NetworkDriver("weave", networks), IpamDriver(FakeIpam())))
        async with TestClient(TestServer(app)) as client:
            bad = await client.post("/IpamDriver.RequestPool", data=b"{oops")
            assert bad.status == 400
            assert (await bad.json())["Err"].startswith("Unable to decode JSON payload")
            shape = await client.post("/NetworkDriver.Join", data=b'"text"')
            assert shape.status == 400 and "JSON object" in (await shape.json())["Err"]
            refused = await client.post("/IpamDriver.RequestAddress", json={"PoolID": "x"})
            assert (await refused.json()) == {"Err": "Unrecognized pool ID: x"}
            good = await client.post("/IpamDriver.RequestPool", json={"Pool": "10.2.0.0/16"})
            assert json.loads(await good.text())["Pool"] == "10.2.0.0/16"
            assert (await client.post("/Plugin.Activate")).status == 200
            assert app[BAD_REQUESTS]["bad_requests"] == 2

    run(case())


class FakeDocker:
    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    async def inspect(self, name: str) -> dict[str, Any] | None:
        return self.info

    async def network(self, name: str) -> dict[str, Any] | None:
        return {"Driver": "weavemesh"} if name == "net1" else {"Driver": "bridge"}


class FakeNames:
    domain = "weave.local."

    def __init__(self) -> None:
        self.entries: set[tuple[str, str, int]] = set()

    def add_entry(self, hostname: str, container: str, addr: int) -> None:
        self.entries.add((hostname, container, addr))

    def delete_entries(self, container: str | None = None, **_: Any) -> None:
        self.entries = {e for e in self.entries if e[1] != container}


def container(ip: str) -> dict[str, Any]:
    endpoint = {"NetworkID": "net1", "IPAddress": ip, "IPPrefixLen": 12, "Aliases": [CID[:12]]}
    return {"Id": CID, "Name": "/web", "State": {"Running": True, "Pid": 4242},
            "NetworkSettings": {"Networks": {"weave": endpoint}}}  # fmt: skip


def test_plugin_container_keeps_its_address_across_restarts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ipam, names = FakeIpam(), FakeNames()
    swapped: list[tuple[str, str, str]] = []

    def readdress(path: str, old: Any, new: Any) -> str:
        swapped.append((path, str(old), str(new)))
        return "ethwe0"

    import weavenet.dataplane.plugin_veth as veth

    monkeypatch.setattr(veth, "readdress", readdress)
    first = run(ipam.allocate("_", CIDR.parse("10.32.0.0/12")))
    docker = FakeDocker(container(str(ipaddress.IPv4Address(first.addr))))
    life = PluginContainers(ipam, docker, names, None)
    run(life.started(CID))
    assert ipam.owned == {CID: [first]}
    assert names.entries == {("web.weave.local.", CID, first.addr)}
    fresh = run(ipam.allocate("_", CIDR.parse("10.32.0.0/12")))  # Docker's ask on restart
    docker.info = container(str(ipaddress.IPv4Address(fresh.addr)))
    run(life.started(CID))
    assert swapped == [("/proc/4242/ns/net", "10.32.0.2/12", "10.32.0.1/12")]
    assert ipam.owned == {CID: [first]}, "the fresh address is freed"
    run(life.destroyed(CID))
    assert ipam.owned == {} and names.entries == set()
    run(life.destroyed(CID))  # twice: nothing left to free, no error


def test_dns_names_skip_the_short_id_alias() -> None:
    info = container("10.32.0.1")
    endpoint = info["NetworkSettings"]["Networks"]["weave"]
    endpoint["Aliases"] = [CID[:12], "api", "db.example.com"]
    assert dns_names(info, endpoint, "weave.local.") == [
        "web.weave.local.", "api.weave.local.", "db.example.com."]  # fmt: skip
    assert lifecycle.is_container_id(CID)


def test_delete_endpoint_answers_first_and_settle_waits_for_the_veth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    import weavenet.dataplane.plugin_veth as veth
    from weavenet.dataplane.netlink import DataplaneError

    release, deleted = threading.Event(), []

    def delete_endpoint_veth(endpoint: str, netns: str | None = None) -> bool:
        if not release.wait(10):
            raise AssertionError("never released")
        if endpoint.startswith("f"):
            raise DataplaneError("link vanished")
        deleted.append(endpoint)
        return True

    monkeypatch.setattr(veth, "delete_endpoint_veth", delete_endpoint_veth)

    async def networks(driver: str) -> list[dict[str, Any]]:
        return []

    async def case() -> None:
        drv = NetworkDriver("weave", networks)
        assert await drv.delete_endpoint({"EndpointID": "e" * 64}) == {}
        assert await drv.delete_endpoint({"EndpointID": "f" * 64}) == {}  # fails: logged
        assert deleted == []  # the answer did not wait for the kernel
        release.set()
        await drv.settle()
        assert deleted == ["e" * 64]

    run(case())
