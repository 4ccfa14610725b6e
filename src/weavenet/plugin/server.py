"""Docker's legacy (v1) plugin protocol on a unix socket (Weave's plugin/skel/listener.go).

POST /Plugin.Activate, /NetworkDriver.<Method> and /IpamDriver.<Method>, JSON in and
out. A body that is not a JSON object gets a 400 with `{"Err": "Unable to decode JSON
payload: ..."}`; a request the driver refuses gets `{"Err": reason}` (Docker shows it to
the user); either way the plugin keeps serving. Docker finds the plugin by its socket in
/run/docker/plugins, so the socket is (re)made at start and removed at stop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from weavenet.plugin.ipam_driver import IpamDriver
from weavenet.plugin.net_driver import NetworkDriver

log = logging.getLogger("weavenet.plugin")

DEFAULT_SOCKET = "/run/docker/plugins/weavemesh.sock"
CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
BAD_REQUESTS: web.AppKey[dict[str, int]] = web.AppKey("plugin_bad_requests", dict)


def _answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type=CONTENT_TYPE)


def routes(net: NetworkDriver, ipam: IpamDriver) -> dict[str, Handler]:
    return {
        "NetworkDriver.GetCapabilities": net.capabilities,
        "NetworkDriver.CreateNetwork": net.create_network,
        "NetworkDriver.DeleteNetwork": net.delete_network,
        "NetworkDriver.AllocateNetwork": net.allocate_network,
        "NetworkDriver.FreeNetwork": net.free_network,
        "NetworkDriver.CreateEndpoint": net.create_endpoint,
        "NetworkDriver.DeleteEndpoint": net.delete_endpoint,
        "NetworkDriver.EndpointOperInfo": net.endpoint_info,
        "NetworkDriver.Join": net.join,
        "NetworkDriver.Leave": net.leave,
        "NetworkDriver.DiscoverNew": net.discover,
        "NetworkDriver.DiscoverDelete": net.discover,
        "IpamDriver.GetCapabilities": ipam.capabilities,
        "IpamDriver.GetDefaultAddressSpaces": ipam.default_address_spaces,
        "IpamDriver.RequestPool": ipam.request_pool,
        "IpamDriver.ReleasePool": ipam.release_pool,
        "IpamDriver.RequestAddress": ipam.request_address,
        "IpamDriver.ReleaseAddress": ipam.release_address,
    }


async def _decode(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    data = json.loads(raw)  # ValueError (JSONDecodeError, UnicodeDecodeError) on bad input
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def make_app(table: dict[str, Handler]) -> web.Application:
    counters = {"bad_requests": 0}

    async def activate(_: web.Request) -> web.Response:
        return _answer({"Implements": ["NetworkDriver", "IpamDriver"]})

    async def call(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        handler = table.get(method)
        if handler is None:
            return _answer({"Err": f"unknown plugin method {method}"}, 404)
        try:
            req = await _decode(request)
        except ValueError as exc:
            counters["bad_requests"] += 1
            log.warning("[plugin] %s: bad request body: %s", method, exc)
            return _answer({"Err": f"Unable to decode JSON payload: {exc}"}, 400)
        started = time.perf_counter()
        try:
            return _answer(await handler(req))
        except Exception as exc:  # the driver's refusal, or trouble: Docker shows the text
            log.error("[plugin] %s: %s", method, exc)
            return _answer({"Err": str(exc) or type(exc).__name__}, 200)
        finally:  # where a `docker run --net=weave` spends its time in the plugin
            log.debug("[plugin] %s took %.1f ms", method, (time.perf_counter() - started) * 1000)

    app = web.Application()
    app[BAD_REQUESTS] = counters
    app.router.add_post("/Plugin.Activate", activate)
    app.router.add_post("/{method}", call)
    return app


async def start_plugin(app: web.Application, socket_path: str) -> web.AppRunner:
    """Listen on `socket_path`, replacing a stale socket from an earlier run."""
    path = Path(socket_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        path.unlink()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.UnixSite(runner, socket_path).start()
    os.chmod(socket_path, 0o660)
    log.info("Docker plugin listening on %s", socket_path)
    return runner


async def stop_plugin(runner: web.AppRunner, socket_path: str) -> None:
    await runner.cleanup()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
