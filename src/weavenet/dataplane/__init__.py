"""The kernel side of weavenet: the only package that talks netlink (pyroute2) or nftables.

Everything here is synchronous; the daemon calls it from a worker thread. Every function
takes an optional `netns` (a /run/netns name or a namespace file path) naming the host
namespace to act in; None means the caller's own.

Names are imported on first use (PEP 562): `weavenet.dataplane.proc_route` and the like
must not pull in pyroute2 for a CLI that never talks netlink. The attach *function* is not
exported here: its module has the same name, and once anything imports
`weavenet.dataplane.attach` the package attribute is that module, so `dataplane.attach(...)`
would call a module. Import it from `weavenet.dataplane.attach` (mypy then checks callers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weavenet.dataplane.attach import (
        CONTAINER_IFNAME,
        AttachResult,
        ContainerAddresses,
        container_addresses,
        detach,
        format_ps_line,
        reattach_ports,
        send_gratuitous_arps,
        veth_name,
    )
    from weavenet.dataplane.bridge import (
        DEFAULT_BRIDGE,
        DEFAULT_TAP,
        BridgeInfo,
        Exposed,
        FirewallState,
        bridge_addresses,
        bridge_exists,
        bridge_info,
        delete_bridge,
        delete_link,
        ensure_bridge,
        ensure_tap,
        expose,
        firewall_intact,
        firewall_script,
        hide,
        open_tap_fd,
        reapply_firewall,
        remove_firewall,
        set_bridge_address,
    )
    from weavenet.dataplane.containers import (
        HOST_NETNS_MESSAGE,
        ContainerRef,
        docker_inspect,
        ensure_not_host,
        resolve_container,
    )
    from weavenet.dataplane.host import container_ports, overlapping_route, reset_host
    from weavenet.dataplane.netlink import DataplaneError, run_in_netns

_HOME = {
    "AttachResult": "attach",
    "BridgeInfo": "bridge",
    "CONTAINER_IFNAME": "attach",
    "ContainerAddresses": "attach",
    "ContainerRef": "containers",
    "DEFAULT_BRIDGE": "bridge",
    "DEFAULT_TAP": "bridge",
    "DataplaneError": "netlink",
    "Exposed": "bridge",
    "FirewallState": "bridge",
    "HOST_NETNS_MESSAGE": "containers",
    "bridge_addresses": "bridge",
    "bridge_exists": "bridge",
    "bridge_info": "bridge",
    "container_addresses": "attach",
    "container_ports": "host",
    "delete_bridge": "bridge",
    "delete_link": "bridge",
    "detach": "attach",
    "docker_inspect": "containers",
    "ensure_bridge": "bridge",
    "ensure_not_host": "containers",
    "ensure_tap": "bridge",
    "expose": "bridge",
    "firewall_intact": "bridge",
    "firewall_script": "bridge",
    "format_ps_line": "attach",
    "hide": "bridge",
    "open_tap_fd": "bridge",
    "overlapping_route": "host",
    "reapply_firewall": "bridge",
    "reattach_ports": "attach",
    "remove_firewall": "bridge",
    "reset_host": "host",
    "resolve_container": "containers",
    "run_in_netns": "netlink",
    "send_gratuitous_arps": "attach",
    "set_bridge_address": "bridge",
    "veth_name": "attach",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'weavenet.dataplane' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"weavenet.dataplane.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CONTAINER_IFNAME",
    "DEFAULT_BRIDGE",
    "DEFAULT_TAP",
    "HOST_NETNS_MESSAGE",
    "AttachResult",
    "BridgeInfo",
    "ContainerAddresses",
    "ContainerRef",
    "DataplaneError",
    "Exposed",
    "FirewallState",
    "bridge_addresses",
    "bridge_exists",
    "bridge_info",
    "container_addresses",
    "container_ports",
    "delete_bridge",
    "delete_link",
    "detach",
    "docker_inspect",
    "ensure_bridge",
    "ensure_not_host",
    "ensure_tap",
    "expose",
    "firewall_intact",
    "firewall_script",
    "format_ps_line",
    "hide",
    "open_tap_fd",
    "overlapping_route",
    "reapply_firewall",
    "reattach_ports",
    "remove_firewall",
    "reset_host",
    "resolve_container",
    "run_in_netns",
    "send_gratuitous_arps",
    "set_bridge_address",
    "veth_name",
]
