"""``weave-net``: attach a container to the weave bridge (Weave's plugin/net/cni.go).

ADD: addresses from IPAM; the gateway is the bridge's address in the container's subnet
(the bridge gets one through the router's expose path, ``weave:expose``, if it has none)
unless IPAM gave routes or a gateway; a veth ``vethwepl...`` on the bridge (hairpin per
config, MTU from the config or the bridge), its peer moved into CNI_NETNS as CNI_IFNAME
with the addresses; then the routes: none given, a default route via the gateway (and a
link route to the gateway if it lies outside the subnet); given, exactly those. If a
step after the allocation fails, the interface is removed and the addresses freed.

DEL: removes the interface (if the namespace still exists) and frees the addresses;
doing it twice, or for a container we never saw, succeeds.

CHECK: the interface exists with the result's MAC and addresses, is a port of the bridge,
has the result's routes, and IPAM still holds the addresses; else CHECK_FAILED listing
every difference.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Any

from weavenet.cni import ipam
from weavenet.cni.config import Env, NetConf
from weavenet.cni.errors import CHECK_FAILED, KERNEL_ERROR, CniError
from weavenet.cni.result import Interface, IpConfig, Result, RouteT
from weavenet.cni.router import EXPOSE_IDENT, Router

DEFAULT_DST = ipaddress.IPv4Network("0.0.0.0/0")


def _kernel(what: str, exc: Exception) -> CniError:
    return CniError(KERNEL_ERROR, f"{what}: {exc}")


def _gateway(conf: NetConf, ip: IpConfig, router: Router) -> ipaddress.IPv4Address:
    """The bridge's address in the container's subnet, exposing one if it has none."""
    from weavenet.dataplane import DataplaneError, bridge_addresses

    try:
        mac, addrs = bridge_addresses(conf.bridge)
    except DataplaneError as exc:
        raise _kernel(f"cannot read bridge {conf.bridge}", exc) from None
    if mac is None:
        raise CniError(KERNEL_ERROR, f"there is no bridge {conf.bridge!r} here: start the "
                       "router with 'weave launch' (or fix \"bridge\" in the config)")  # fmt: skip
    for addr in addrs:
        if ip.address.ip in addr.network:
            return addr.ip
    cidr = router.allocate(EXPOSE_IDENT, ip.address.network, conf.ipam_timeout)
    router.expose(cidr)
    return cidr.ip


def _routes(result: Result, ip: IpConfig, gw: ipaddress.IPv4Address | None) -> list[RouteT]:
    """The routes to install, each with its gateway (Weave's setupRoutes)."""
    if result.routes:
        return [(dst, rgw or gw) for dst, rgw in result.routes]
    if gw is None:
        return []
    routes: list[RouteT] = []
    if gw not in ip.address.network:
        routes.append((ipaddress.IPv4Network(f"{gw}/32"), None))
    return [*routes, (DEFAULT_DST, gw)]


def add(env: Env, conf: NetConf, router: Router) -> Result:
    from weavenet import dataplane
    from weavenet.dataplane import DataplaneError, routes

    ref = dataplane.ContainerRef(env.container_id, env.netns)
    try:
        dataplane.ensure_not_host(ref)
    except DataplaneError as exc:
        raise CniError(KERNEL_ERROR, f"CNI_NETNS {env.netns}: {exc}") from None
    result = ipam.add(env, conf, router)
    try:
        ip = result.ips[0]
        gw = ip.gateway
        if not result.routes and gw is None:
            gw = _gateway(conf, ip, router)
        attached = dataplane.attach(
            ref, [i.address for i in result.ips], conf.bridge, multicast_route=False,
            mtu=conf.mtu, ifname=env.ifname, hairpin=conf.hairpin,
        )  # fmt: skip
        wanted = _routes(result, ip, gw)
        routes.add_routes(env.netns, env.ifname, [routes.Route(d, g) for d, g in wanted])
    except DataplaneError as exc:
        _undo(env, conf, router)
        raise _kernel(f"attach {env.container_id} to {conf.bridge}", exc) from None
    except CniError:
        _undo(env, conf, router)
        raise
    host = Interface(attached.ifname, attached.host_mac)
    cont = Interface(env.ifname, attached.mac, env.netns)
    ips = [IpConfig(i.address, gw if i is ip else i.gateway, 1) for i in result.ips]
    shown = [r for r in wanted if r[1] is not None]  # a link route has no result form
    return Result(ips, shown, [host, cont], conf.dns or result.dns)


def _undo(env: Env, conf: NetConf, router: Router) -> None:
    try:
        delete(env, conf, router)
    except CniError as exc:
        print(f"weave-cni: cleaning up after a failed ADD: {exc.msg}", file=sys.stderr)


def _remove_interface(env: Env) -> None:
    from weavenet import dataplane
    from weavenet.dataplane import DataplaneError

    try:
        dataplane.detach(dataplane.ContainerRef(env.container_id, env.netns), None, env.ifname)
    except DataplaneError as exc:  # the namespace is gone: so is the veth
        print(f"weave-cni: removing {env.ifname} in {env.netns}: {exc}", file=sys.stderr)


def delete(env: Env, conf: NetConf, router: Router) -> None:
    if env.netns:
        _remove_interface(env)
    ipam.delete(env, conf, router)


def _link_problems(env: Env, conf: NetConf, prev: Result) -> list[str]:
    from weavenet.dataplane import ContainerRef, DataplaneError, routes
    from weavenet.dataplane.attach import link_state

    try:
        state = link_state(ContainerRef(env.container_id, env.netns), conf.bridge,
                           ifname=env.ifname)  # fmt: skip
        have_routes = routes.routes_of(env.netns, env.ifname) if state else set()
    except DataplaneError as exc:
        return [f"cannot inspect {env.ifname} in {env.netns}: {exc}"]
    if state is None:
        return [f"interface {env.ifname} is missing in {env.netns}"]
    problems = []
    index = next((n for n, i in enumerate(prev.interfaces) if i.sandbox and i.name == env.ifname),
                 None)  # fmt: skip
    if index is not None and prev.interfaces[index].mac.lower() != state.mac.lower():
        problems.append(f"{env.ifname} has MAC {state.mac}, not {prev.interfaces[index].mac}")
    for ip in prev.ips:
        if ip.interface in (None, index) and ip.address not in state.cidrs:
            problems.append(f"{env.ifname} lacks address {ip.address}")
    if not state.on_bridge:
        problems.append(f"the host end of {env.ifname} is not a port of bridge {conf.bridge}")
    gw = next((ip.gateway for ip in prev.ips if ip.gateway is not None), None)
    for dst, rgw in prev.routes:
        if routes.Route(dst, rgw or gw) not in have_routes:
            problems.append(f"route {dst} via {rgw or gw} is missing")
    if gw is not None and not prev.routes and routes.Route(DEFAULT_DST, gw) not in have_routes:
        problems.append(f"default route via {gw} is missing")
    return problems


def check(env: Env, conf: NetConf, router: Router) -> None:
    prev = ipam.prev_result(conf)
    problems = _link_problems(env, conf, prev) + ipam.check(env, conf, router, prev)
    if problems:
        raise CniError(CHECK_FAILED, "; ".join(problems) + ": the attachment is damaged; "
                       "delete and re-create the container")  # fmt: skip


def plugin(env: Env, conf: NetConf) -> dict[str, Any] | None:
    router = Router()
    if env.command == "ADD":
        return add(env, conf, router).to_json(conf.cni_version)
    if env.command == "DEL":
        delete(env, conf, router)
    else:
        check(env, conf, router)
    return None
