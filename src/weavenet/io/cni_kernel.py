"""The netlink half of the CNI plugin, done by the router for it.

The plugin runs once per container operation; importing the data plane (pyroute2) would
cost it ~200 ms of CPU each time (BENCHMARKS.md), while the router has it loaded. So the
plugin sends the router what to do and its own pid, and the router does it through
``weavenet.dataplane`` in a worker thread, in the plugin's view of the system: the host
namespace is ``/proc/<pid>/ns/net`` and the container's namespace file is looked up
through ``/proc/<pid>/root`` (so a file bind-mounted in the runtime's mount namespace is
found even if the router's does not see it). The router must share the plugin's PID
namespace, as a host process or a hostPID pod does.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

from weavenet.dataplane import routes as kernel_routes
from weavenet.dataplane.attach import attach as attach_container
from weavenet.dataplane.attach import detach as detach_container
from weavenet.dataplane.attach import link_state
from weavenet.dataplane.bridge import bridge_addresses
from weavenet.dataplane.containers import ContainerRef

# Functions come from their modules, not as `dataplane.attach`: once the submodule
# weavenet.dataplane.attach is imported, the package attribute `attach` is that module
# (the package's lazy names only cover what is not yet an attribute), and calling it
# failed every ADD with "TypeError: 'module' object is not callable".

log = logging.getLogger(__name__)


class CniRequestError(Exception):
    """The request itself is malformed (HTTP 400)."""


def _paths(req: dict[str, Any]) -> tuple[str, str]:
    """(host namespace, container namespace) as the plugin process sees them."""
    pid = req.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        raise CniRequestError("pid must be the plugin's process id")
    netns = str(req.get("netns") or "")
    if not netns.startswith("/"):
        raise CniRequestError("netns must be an absolute path")
    return f"/proc/{pid}/ns/net", f"/proc/{pid}/root{netns}"


def _ref(req: dict[str, Any]) -> tuple[str, ContainerRef]:
    host, container = _paths(req)
    return host, ContainerRef(str(req.get("ident") or ""), container)


def _route_list(data: Any) -> list[kernel_routes.Route]:
    try:
        return [
            kernel_routes.Route(
                ipaddress.IPv4Network(dst), ipaddress.IPv4Address(gw) if gw else None
            )
            for dst, gw in data or []
        ]
    except (TypeError, ValueError) as exc:
        raise CniRequestError(f"bad routes: {exc}") from None


def attach(req: dict[str, Any]) -> dict[str, str]:
    host, ref = _ref(req)
    try:
        cidrs = [ipaddress.IPv4Interface(c) for c in req.get("cidrs") or []]
    except ValueError as exc:
        raise CniRequestError(f"bad cidr: {exc}") from None
    ifname = str(req.get("ifname") or "eth0")
    mtu = req.get("mtu") if isinstance(req.get("mtu"), int) else None
    wanted = _route_list(req.get("routes"))
    done = attach_container(
        ref,
        cidrs,
        str(req.get("bridge") or "weave"),
        multicast_route=False,
        mtu=mtu,
        netns=host,
        ifname=ifname,
        hairpin=bool(req.get("hairpin", True)),
    )
    kernel_routes.add_routes(ref.netns_path, ifname, wanted)
    return {"host_ifname": done.ifname, "host_mac": done.host_mac, "mac": done.mac}


def detach(req: dict[str, Any]) -> dict[str, Any]:
    _, ref = _ref(req)
    removed = detach_container(ref, None, str(req.get("ifname") or "eth0"))
    return {"removed": [str(c) for c in removed]}


def inspect(req: dict[str, Any]) -> dict[str, Any]:
    host, ref = _ref(req)
    ifname = str(req.get("ifname") or "eth0")
    state = link_state(ref, str(req.get("bridge") or "weave"), netns=host, ifname=ifname)
    if state is None:
        return {"exists": False}
    found = kernel_routes.routes_of(ref.netns_path, ifname)
    return {
        "exists": True,
        "mac": state.mac,
        "cidrs": sorted(str(c) for c in state.cidrs),
        "on_bridge": state.on_bridge,
        "routes": sorted([str(r.dst), str(r.gw) if r.gw else None] for r in found),
    }


def bridge(req: dict[str, Any]) -> dict[str, Any]:
    host, _ = _paths({**req, "netns": "/"})
    mac, addrs = bridge_addresses(str(req.get("bridge") or "weave"), host)
    return {"exists": mac is not None, "addresses": [str(a) for a in addrs]}


OPERATIONS = {"attach": attach, "detach": detach, "inspect": inspect, "bridge": bridge}


class CniKernel:
    """Runs the operations above off the event loop."""

    async def run(self, operation: str, req: dict[str, Any]) -> dict[str, Any]:
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise CniRequestError(f"unknown operation {operation!r}: one of {sorted(OPERATIONS)}")
        queued = time.monotonic()
        result, timing = await asyncio.to_thread(_timed, handler, req, queued)
        log.debug("cni-kernel %s: %s", operation, timing)
        return {**result, "timing": timing}


def _timed(
    handler: Callable[[dict[str, Any]], dict[str, Any]], req: dict[str, Any], queued: float
) -> tuple[dict[str, Any], dict[str, float]]:
    """Run `handler` in this worker thread: its answer, and how long it waited and ran."""
    began, cpu = time.monotonic(), time.thread_time()
    result = handler(req)
    timing = {
        "queue_ms": round((began - queued) * 1000, 1),
        "work_ms": round((time.monotonic() - began) * 1000, 1),
        "cpu_ms": round((time.thread_time() - cpu) * 1000, 1),
    }
    return result, timing
