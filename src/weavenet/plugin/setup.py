"""Start-up of the router's Docker integration: the event watcher and the `weavemesh` plugin.

`start_docker` is the daemon's one start-up step for Docker (daemon.py calls it when
`--docker-api` is not empty and the router has a bridge):

- the watcher (io/docker_watch.py) always, so that containers attached with `weave attach`
  come back after restarts and are dropped (addresses freed) when removed;
- with `--plugin` (and IPAM on), the plugin socket and the plugin's life-cycle handler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from weavenet.io.dns_attach import Listeners, Names
from weavenet.io.docker_api import DockerApi
from weavenet.io.docker_watch import DockerWatcher, Listener
from weavenet.plugin.ipam_driver import Ipam, IpamDriver
from weavenet.plugin.lifecycle import PluginContainers
from weavenet.plugin.net_driver import NetworkDriver
from weavenet.plugin.server import make_app, routes, start_plugin, stop_plugin

log = logging.getLogger("weavenet.plugin")


class KeeperHooks(msgspec.Struct):
    """What the watcher calls on the attachment keeper (io.attachments)."""

    started: Callable[[str], Awaitable[None]]
    destroyed: Callable[[str], Awaitable[None]]
    resynced: Callable[[], Awaitable[None]]


class DockerIntegration(msgspec.Struct):
    watcher: DockerWatcher
    api: DockerApi
    plugin: web.AppRunner | None = None
    socket: str = ""
    net: NetworkDriver | None = None

    async def stop(self) -> None:
        await self.watcher.stop()
        if self.plugin is not None:
            await stop_plugin(self.plugin, self.socket)
        if self.net is not None:
            await self.net.settle()
        await self.api.close()


async def start_docker(
    url: str | None,
    keeper: KeeperHooks | None,
    plugin_socket: str | None,
    bridge: str,
    ipam: Ipam | None,
    names: Names | None,
    dns_listeners: Listeners | None = None,
) -> DockerIntegration:
    """The watcher, plus the plugin on `plugin_socket` (None: no plugin)."""
    api = DockerApi(url)
    listeners: list[Listener] = []
    if keeper is not None:
        listeners.append(Listener(keeper.started, keeper.destroyed, keeper.resynced))
    runner, net = None, None
    if plugin_socket is not None and ipam is None:
        log.error("Docker plugin not started: it needs IP address allocation (--ipalloc-range)")
    elif plugin_socket is not None and ipam is not None:
        containers = PluginContainers(ipam, api, names, dns_listeners)
        net = NetworkDriver(bridge, api.networks)
        listeners.append(Listener(containers.started, containers.destroyed, net.learn_networks))
        runner = await start_plugin(make_app(routes(net, IpamDriver(ipam))), plugin_socket)
    watcher = DockerWatcher(url, listeners)
    watcher.start()
    return DockerIntegration(watcher, api, runner, plugin_socket or "", net)
