"""The `weavemesh` network driver, local scope (Weave's plugin/net/driver.go).

CreateEndpoint makes the veth pair on the weave bridge and returns the container end's
MAC; Join hands that end to Docker with the prefix `ethwe` (the container sees `ethwe0`),
asks for no gateway service (else Docker adds a docker_gwbridge interface) and, when the
network has the option `works.weave.multicast` (empty or true), the route 224.0.0.0/4.
The networks' options are learnt from CreateNetwork and, for networks made while we were
down, from Docker's network list each time the event watcher (re)connects; never from
inside a request, since Docker may be waiting for our answer before it serves its API
(a daemon restoring its containers at start).

DeleteEndpoint answers at once and deletes the veth pair after the reply: Docker removes
the container only once it has the answer, and `docker run --rm` / `docker rm` wait for
that removal (endpoint ids are never reused; `settle` waits for the deletions at stop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from weavenet.plugin.ipam_driver import PluginError

log = logging.getLogger("weavenet.plugin")

MULTICAST_OPTION = "works.weave.multicast"
GENERIC_OPTIONS = "com.docker.network.generic"
CONTAINER_PREFIX = "ethwe"
MULTICAST_ROUTE = {"Destination": "224.0.0.0/4", "RouteType": 1}  # 1: CONNECTED
DRIVER_NAME = "weavemesh"

NetworkList = Callable[[str], Awaitable[list[dict[str, Any]]]]


def multicast_wanted(options: dict[str, Any]) -> bool:
    """`works.weave.multicast` given empty ("--opt works.weave.multicast") or true."""
    if MULTICAST_OPTION not in options:
        return False
    value = str(options[MULTICAST_OPTION]).strip().lower()
    if value in ("", "1", "t", "true"):
        return True
    if value in ("0", "f", "false"):
        return False
    raise PluginError(f'unrecognized value "{value}" for option {MULTICAST_OPTION}')


def _generic(options: Any) -> dict[str, Any]:
    generic = (options or {}).get(GENERIC_OPTIONS) if isinstance(options, dict) else None
    return {str(k): v for k, v in generic.items()} if isinstance(generic, dict) else {}


class NetworkDriver:
    def __init__(self, bridge: str, list_networks: NetworkList) -> None:
        self.bridge = bridge
        self.list_networks = list_networks
        self.multicast: dict[str, bool] = {}  # network id -> multicast route wanted
        self._deleting: set[asyncio.Task[None]] = set()

    async def learn_networks(self) -> None:
        """Our networks and their options, from Docker (the watcher calls this)."""
        for info in await self.list_networks(DRIVER_NAME):
            try:
                self.multicast[str(info.get("Id"))] = multicast_wanted(info.get("Options") or {})
            except PluginError as exc:
                log.warning("[net] network %s: %s", info.get("Name"), exc)

    async def capabilities(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"Scope": "local", "ConnectivityScope": "local"}

    async def create_network(self, req: dict[str, Any]) -> dict[str, Any]:
        options = _generic(req.get("Options"))
        for key in options:
            if key != MULTICAST_OPTION:
                log.warning("[net] CreateNetwork: unrecognized option: %s", key)
        self.multicast[str(req.get("NetworkID"))] = multicast_wanted(options)
        return {}

    async def delete_network(self, req: dict[str, Any]) -> dict[str, Any]:
        self.multicast.pop(str(req.get("NetworkID")), None)
        return {}

    async def allocate_network(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"Options": req.get("Options") or {}}

    async def free_network(self, _: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def create_endpoint(self, req: dict[str, Any]) -> dict[str, Any]:
        from weavenet.dataplane.plugin_veth import create_endpoint_veth

        if not req.get("Interface"):
            raise PluginError("Not supported: creating an interface from within CreateEndpoint")
        endpoint = _endpoint_id(req)
        mac = await asyncio.to_thread(create_endpoint_veth, endpoint, self.bridge)
        log.info("[net] CreateEndpoint %s", endpoint[:12])
        return {"Interface": {"MacAddress": mac}}

    async def delete_endpoint(self, req: dict[str, Any]) -> dict[str, Any]:
        task = asyncio.create_task(self._delete_veth(_endpoint_id(req)))
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)
        return {}

    async def _delete_veth(self, endpoint: str) -> None:
        from weavenet.dataplane.netlink import DataplaneError
        from weavenet.dataplane.plugin_veth import delete_endpoint_veth

        try:
            await asyncio.to_thread(delete_endpoint_veth, endpoint)
        except DataplaneError as exc:
            log.warning("[net] DeleteEndpoint %s: %s", endpoint[:12], exc)

    async def settle(self) -> None:
        """Wait for the veth deletions still under way (the plugin is stopping)."""
        await asyncio.gather(*self._deleting, return_exceptions=True)

    async def endpoint_info(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"Value": {}}

    async def join(self, req: dict[str, Any]) -> dict[str, Any]:
        from weavenet.dataplane.plugin_veth import endpoint_veths

        _, peer = endpoint_veths(_endpoint_id(req))
        answer: dict[str, Any] = {
            "InterfaceName": {"SrcName": peer, "DstPrefix": CONTAINER_PREFIX},
            "DisableGatewayService": True,
        }
        network = str(req.get("NetworkID") or "")
        if network not in self.multicast:
            log.warning("[net] Join: network %s not known yet: no multicast route", network[:12])
        if self.multicast.get(network, False):
            answer["StaticRoutes"] = [MULTICAST_ROUTE]
        return answer

    async def leave(self, _: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def discover(self, _: dict[str, Any]) -> dict[str, Any]:
        return {}

    def is_ours(self, network: dict[str, Any]) -> bool:
        return str(network.get("Driver")) == DRIVER_NAME


def _endpoint_id(req: dict[str, Any]) -> str:
    endpoint = str(req.get("EndpointID") or "")
    if len(endpoint) < 9:
        raise PluginError(f"invalid EndpointID {endpoint!r}")
    return endpoint
