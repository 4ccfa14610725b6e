"""fastdp's kernel side: observe the VXLAN devices and fdb, apply planned operations.

The plan (and why there are two devices, pinned MACs and no flood entries) is in
:mod:`weavenet.core.overlay.vxlan_plan`; flannel's ``device.go`` is the model for what
lives here: the devices and a few one-call verbs, each idempotent (``replace``, deletes
that ignore "not found"), so a round that fails half-way is finished by the next one.
Per remote peer the kernel holds one fdb entry per MAC behind it and nothing else.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

from weavenet.core.overlay.fastdp import VXLAN_OVERHEAD
from weavenet.core.overlay.vxlan_plan import (
    AddPin,
    CreateDevice,
    DelFdb,
    DelPort,
    DeviceSeen,
    DeviceSpec,
    FixDevice,
    IsolateTap,
    Observed,
    Op,
    VxlanConfig,
)
from weavenet.core.overlay.vxlan_watch import DeviceIndexes
from weavenet.dataplane.netlink import (
    DataplaneError,
    disable_ipv6,
    ignoring,
    iproute,
    kernel_errors,
    link_index,
    link_info,
    link_kind,
)

NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NTF_SELF, NTF_MASTER, NTF_STICKY = 0x02, 0x04, 0x40
IFF_UP = 0x1


def _linkinfo_data(msg: Any) -> Any:
    info = msg.get("IFLA_LINKINFO")
    return info.get("IFLA_INFO_DATA") if info is not None else None


def _port_isolated(msg: Any) -> bool:
    info = msg.get("IFLA_LINKINFO")
    slave = info.get("IFLA_INFO_SLAVE_DATA") if info is not None else None
    return bool(slave is not None and slave.get("IFLA_BRPORT_ISOLATED"))


def _links(ipr: Any) -> tuple[dict[str, Any], dict[int, str]]:
    """One dump of the namespace's links: messages by name, names by index (a host
    namespace has a handful; a lookup per device cost a request each)."""
    by_name: dict[str, Any] = {}
    names: dict[int, str] = {}
    for msg in ipr.get_links():
        name = str(msg.get("IFLA_IFNAME"))
        by_name[name] = msg
        names[int(msg["index"])] = name
    return by_name, names


def _seen(links: tuple[dict[str, Any], dict[int, str]], name: str) -> DeviceSeen | None:
    msg = links[0].get(name)
    return None if msg is None else device_seen(msg, links[1].get)


def device_seen(msg: Any, bridge_name: Callable[[int], str | None]) -> DeviceSeen:
    """An RTM_NEWLINK message of a device, in the plan's terms; ``bridge_name`` names the
    master's index (a dump knows every link, the watcher only the bridge's)."""
    data = _linkinfo_data(msg)
    if link_kind(msg) != "vxlan" or data is None:
        return DeviceSeen(-1, -1, 0, False, None, False, False)
    master = msg.get("IFLA_MASTER")
    return DeviceSeen(
        vni=int(data.get("IFLA_VXLAN_ID") or 0),
        port=int(data.get("IFLA_VXLAN_PORT") or 0),
        mtu=int(msg.get("IFLA_MTU") or 0),
        learning=bool(data.get("IFLA_VXLAN_LEARNING")),
        bridge=bridge_name(int(master)) if master else None,
        up=bool(msg["flags"] & IFF_UP),
        isolated=_port_isolated(msg),
    )


def _fdb(ipr: Any, index: int) -> tuple[set[tuple[str, str, bool]], set[tuple[str, bool]]]:
    fdb: set[tuple[str, str, bool]] = set()
    port: set[tuple[str, bool]] = set()
    for msg in ipr.fdb("dump", ifindex=index):
        if msg["ifindex"] != index:
            continue
        mac = str(msg.get("NDA_LLADDR") or "")
        state, flags = msg["state"], msg["flags"]
        if flags & NTF_SELF and msg.get("NDA_DST"):
            fdb.add((mac, str(msg.get("NDA_DST")), bool(state & (NUD_PERMANENT | NUD_NOARP))))
        elif msg.get("NDA_MASTER") and not state & NUD_PERMANENT:  # PERMANENT: its own MAC
            port.add((mac, bool(state & NUD_NOARP) and bool(flags & NTF_STICKY)))
    return fdb, port


def observe(config: VxlanConfig, netns: str | None = None) -> tuple[Observed, DeviceIndexes]:
    """What the kernel has now, in the plan's terms, and the indexes of the devices and
    the bridge (for the socket that reads heartbeats, and for the watcher's filter)."""
    with iproute(netns) as ipr, kernel_errors("observe fastdp devices"):
        links = _links(ipr)
        data_name, heartbeat_name = config.data_device().name, config.heartbeat_device().name
        data, heartbeat = _seen(links, data_name), _seen(links, heartbeat_name)
        tap = links[0].get(config.tap)
        tap_isolated = tap is None or _port_isolated(tap)
        indexes = DeviceIndexes(
            *(_index(links, name) for name in (data_name, heartbeat_name, config.bridge))
        )
        fdb, port = _fdb(ipr, indexes.data) if indexes.data is not None else (set(), set())
        observed = Observed(data, heartbeat, tap_isolated, frozenset(fdb), frozenset(port))
        return observed, indexes


def _index(links: tuple[dict[str, Any], dict[int, str]], name: str) -> int | None:
    msg = links[0].get(name)
    return int(msg["index"]) if msg is not None else None


def _create(ipr: Any, spec: DeviceSpec, netns: str | None) -> int:
    with ignoring(*((errno.ENODEV,))):
        old = link_index(ipr, spec.name)
        if old is not None:
            ipr.link("del", index=old)
    ipr.link(
        "add",
        ifname=spec.name,
        kind="vxlan",
        vxlan_id=spec.vni,
        vxlan_port=spec.port,
        vxlan_learning=1 if spec.learning else 0,
        mtu=spec.mtu,
    )
    return _fix(ipr, spec, netns)


def _fix(ipr: Any, spec: DeviceSpec, netns: str | None) -> int:
    """Make the device named in ``spec`` match it; returns its index."""
    index = link_index(ipr, spec.name)
    if index is None:
        raise DataplaneError(f"{spec.name} vanished", errno.ENODEV)
    ipr.link("set", index=index, mtu=spec.mtu)
    if spec.bridge is not None:
        master = link_index(ipr, spec.bridge)
        if master is None:
            raise DataplaneError(f"bridge {spec.bridge} is missing", errno.ENODEV)
        ipr.link("set", index=index, master=master)
        ipr.brport("set", index=index, isolated=1)
    disable_ipv6(spec.name, netns)  # before "up": no DAD, no MLD report, no solicitation
    ipr.link("set", index=index, state="up")
    return index


class _Session:
    """One :func:`apply`'s netlink session; the data device's index is looked up once."""

    def __init__(self, ipr: Any, config: VxlanConfig, netns: str | None) -> None:
        self.ipr, self.config, self.netns = ipr, config, netns
        self._index: int | None = None

    def data_index(self) -> int:
        if self._index is None:
            name = self.config.data_device().name
            self._index = link_index(self.ipr, name)
            if self._index is None:
                raise DataplaneError(f"{name} is missing", errno.ENODEV)
        return self._index

    def run(self, op: Op) -> int | None:
        """Carry out ``op``; returns the index of the device it created, if it did."""
        if isinstance(op, CreateDevice):
            self._index = None
            return _create(self.ipr, op.spec, self.netns)
        if isinstance(op, FixDevice):
            _fix(self.ipr, op.spec, self.netns)
        elif isinstance(op, IsolateTap):
            tap = link_index(self.ipr, op.tap)
            if tap is not None:
                self.ipr.brport("set", index=tap, isolated=1)
        elif isinstance(op, AddPin):
            self.pin(op.mac, op.ip)
        elif isinstance(op, DelFdb):
            with ignoring(errno.ENOENT):
                self.fdb("del", op.mac, dst=op.ip, flags=NTF_SELF)
        elif isinstance(op, DelPort):
            with ignoring(errno.ENOENT):
                self.fdb("del", op.mac, flags=NTF_MASTER)
        return None

    def pin(self, mac: str, ip: str) -> None:
        """``replace`` alone moves the MAC's VXLAN entry to ``ip``: the kernel keeps one
        remote per unicast MAC (it ignores NLM_F_APPEND for them), and replace rewrites
        it. (This used to dump the whole fdb per pin to delete the MAC's other remotes:
        pinning 100 MACs cost 0.9 CPU-s, bench/fastdp_observe.py.)"""
        self.fdb("replace", mac, dst=ip, state=NUD_PERMANENT, flags=NTF_SELF)
        self.fdb("replace", mac, state=NUD_NOARP, flags=NTF_MASTER | NTF_STICKY)

    def fdb(self, verb: str, mac: str, **kwargs: Any) -> None:
        self.ipr.fdb(verb, ifindex=self.data_index(), lladdr=mac, **kwargs)


def apply(ops: list[Op], config: VxlanConfig, netns: str | None = None) -> dict[str, int]:
    """Carry out ``ops`` in order (DataplaneError on the first that fails); returns the
    devices it (re)created, name -> new index (the lookup that set them up found it)."""
    created: dict[str, int] = {}
    with iproute(netns) as ipr:
        session = _Session(ipr, config, netns)
        for op in ops:
            with kernel_errors(f"fastdp: {op}"):
                index = session.run(op)
            if index is not None and isinstance(op, CreateDevice):
                created[op.spec.name] = index
    return created


def underlay_mtu(netns: str | None = None) -> tuple[str, int]:
    """(interface, MTU) of the underlay: the default route's device, else the first
    non-loopback interface that is up and has an IPv4 address."""
    with iproute(netns) as ipr, kernel_errors("find the underlay interface"):
        for route in ipr.route("dump", family=socket.AF_INET, table=254):
            if route["dst_len"] == 0 and route.get("RTA_OIF"):
                msg = link_info(ipr, route.get("RTA_OIF"))
                return str(msg.get("IFLA_IFNAME")), int(msg.get("IFLA_MTU"))
        for msg in ipr.addr("dump", family=socket.AF_INET):
            link = link_info(ipr, msg["index"])
            if link.get("IFLA_IFNAME") != "lo" and link["flags"] & IFF_UP:
                return str(link.get("IFLA_IFNAME")), int(link.get("IFLA_MTU"))
    raise DataplaneError("no underlay interface (no default route, no IPv4 address)")


def check_mtu(mtu: int, netns: str | None = None) -> None:
    """DataplaneError saying what to do when ``mtu`` does not fit the underlay."""
    ifname, underlay = underlay_mtu(netns)
    if mtu + VXLAN_OVERHEAD > underlay:
        raise DataplaneError(
            f"--mtu {mtu} does not fit the underlay: {ifname} has MTU {underlay} and fastdp "
            f"needs MTU + {VXLAN_OVERHEAD}; use --mtu {underlay - VXLAN_OVERHEAD} or less "
            "(or --no-fastdp)"
        )
