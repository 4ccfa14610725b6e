"""fastdp's kernel state, planned (flannel's vxlan backend, split into plan and diff).

The core computes the desired state from the overlay switch (which peers fastdp carries,
at which IPs) and the MAC cache (which MAC is behind which peer); the dataplane observes
the kernel; :func:`diff` turns the difference into ordered, idempotent operations, so a
deleted device or entry comes back on the next round and every repair is reported.

The model, per host:

* ``vxlan-6784``: the data device, VNI :data:`DATA_VNI`, UDP 6784, a port of the ``weave``
  bridge, isolated from the TAP port (so frames never go VXLAN <-> userspace sleeve, in
  either direction), with kernel learning on: a frame arriving from a peer teaches the
  device which IP its MAC is behind, so replies need no help from userspace.
* per MAC at a peer fastdp carries (from the MAC cache): a permanent VXLAN fdb entry
  ``MAC dst peer-ip`` and a static, sticky bridge entry ``MAC -> vxlan port`` (the bridge
  otherwise learns the MAC at the TAP from frames the sleeve injected, and would keep
  sending it there).
* no all-zero flood entries: broadcasts, multicast and unknown unicast take the sleeve's
  broadcast tree, which delivers them exactly once on any topology and relays them
  through middle hosts; a peer receiving a broadcast from the VXLAN device could not
  pass it on, for it cannot tell which peer it came from (one VNI for all).
* entries (learned or not) towards an IP fastdp no longer carries are removed, and the
  bridge forgets MACs it learned at the VXLAN port that no entry resolves, so traffic
  falls back to the sleeve at once.
* ``vxhb-6784``: the heartbeat device, VNI :data:`HEARTBEAT_VNI`, same UDP port, off the
  bridge, no learning: heartbeats land there and are read with an AF_PACKET socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from weavenet.core.overlay.fastdp import DATA_VNI, HEARTBEAT_VNI

ZERO_MAC = "00:00:00:00:00:00"


class DeviceSpec(msgspec.Struct, frozen=True):
    name: str
    vni: int
    port: int
    mtu: int
    learning: bool
    bridge: str | None  # the master, or None for a device off the bridge


class DeviceSeen(msgspec.Struct, frozen=True):
    vni: int
    port: int
    mtu: int
    learning: bool
    bridge: str | None
    up: bool
    isolated: bool  # as a bridge port (False off the bridge)


class Desired(msgspec.Struct, frozen=True):
    data: DeviceSpec
    heartbeat: DeviceSpec
    tap: str  # the TAP port to isolate from the data device
    pins: frozenset[tuple[str, str]]  # (MAC, peer IP)
    peer_ips: frozenset[str]  # the peers fastdp carries


class Observed(msgspec.Struct, frozen=True):
    data: DeviceSeen | None
    heartbeat: DeviceSeen | None
    tap_isolated: bool
    fdb: frozenset[tuple[str, str, bool]]  # VXLAN entries (MAC, IP, permanent?)
    port: frozenset[tuple[str, bool]]  # bridge entries at the data port (MAC, static?)


class CreateDevice(msgspec.Struct, frozen=True):
    """(Re)create the device: delete whatever has its name, create it, up, enslave."""

    spec: DeviceSpec


class FixDevice(msgspec.Struct, frozen=True):
    """Set MTU, master, up and port isolation on an otherwise right device."""

    spec: DeviceSpec


class IsolateTap(msgspec.Struct, frozen=True):
    tap: str


class AddPin(msgspec.Struct, frozen=True):
    mac: str
    ip: str


class DelFdb(msgspec.Struct, frozen=True):
    mac: str
    ip: str


class DelPort(msgspec.Struct, frozen=True):
    mac: str


Op = CreateDevice | FixDevice | IsolateTap | AddPin | DelFdb | DelPort


class VxlanConfig(msgspec.Struct, frozen=True):
    bridge: str
    tap: str
    mtu: int
    port: int

    def data_device(self) -> DeviceSpec:
        return DeviceSpec(f"vxlan-{self.port}", DATA_VNI, self.port, self.mtu, True, self.bridge)

    def heartbeat_device(self) -> DeviceSpec:
        return DeviceSpec(f"vxhb-{self.port}", HEARTBEAT_VNI, self.port, 65000, False, None)


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def plan(
    config: VxlanConfig,
    peer_ips: Mapping[int, str],
    macs: Iterable[tuple[bytes, int]],
) -> Desired:
    """``peer_ips``: peers fastdp carries now -> their IP; ``macs``: (MAC, owner peer)."""
    pins = frozenset((format_mac(mac), peer_ips[peer]) for mac, peer in macs if peer in peer_ips)
    return Desired(
        config.data_device(),
        config.heartbeat_device(),
        config.tap,
        pins,
        frozenset(peer_ips.values()),
    )


def device_ops(spec: DeviceSpec, seen: DeviceSeen | None) -> list[Op]:
    """What makes the device ``seen`` (None: missing) the ``spec`` ([]: it is)."""
    if seen is None or (seen.vni, seen.port, seen.learning) != (spec.vni, spec.port, spec.learning):
        return [CreateDevice(spec)]
    want_isolated = spec.bridge is not None
    if (seen.mtu, seen.bridge, seen.up, seen.isolated) != (
        spec.mtu,
        spec.bridge,
        True,
        want_isolated,
    ):
        return [FixDevice(spec)]
    return []


def diff(desired: Desired, observed: Observed) -> list[Op]:
    """What to do, in order, to make ``observed`` the ``desired`` state."""
    ops = device_ops(desired.data, observed.data)
    ops += device_ops(desired.heartbeat, observed.heartbeat)
    if not observed.tap_isolated:
        ops.append(IsolateTap(desired.tap))
    recreated = observed.data is None or any(
        isinstance(op, CreateDevice) and op.spec == desired.data for op in ops
    )
    fdb = frozenset() if recreated else observed.fdb
    port = frozenset() if recreated else observed.port
    pinned_macs = {mac for mac, _ in desired.pins}
    # The dataplane deletes an fdb entry by (MAC, remote): every twin of a deleted pair
    # goes with it, so a MAC is kept only through a pair that stays.
    deleted: set[tuple[str, str]] = set()
    for mac, ip, permanent in sorted(fdb):
        stale = ip not in desired.peer_ips or mac == ZERO_MAC
        if (stale or (permanent and (mac, ip) not in desired.pins)) and (mac, ip) not in deleted:
            ops.append(DelFdb(mac, ip))
            deleted.add((mac, ip))
    kept = pinned_macs | {mac for mac, ip, _ in fdb if (mac, ip) not in deleted}
    for mac, ip in sorted(desired.pins):
        if (mac, ip, True) not in fdb or (mac, True) not in port:
            ops.append(AddPin(mac, ip))
    for mac, static in sorted(port):
        if mac not in kept or (static and mac not in pinned_macs):
            ops.append(DelPort(mac))
    return ops


def additions_only(last: Desired, desired: Desired) -> list[Op] | None:
    """The ops that take a kernel holding `last` to `desired` when `desired` only adds
    pins and peers to it (no observation needed: nothing the kernel has must go); None
    when it removes or changes anything, which needs a full :func:`diff`."""
    same_devices = (last.data, last.heartbeat, last.tap) == (
        desired.data,
        desired.heartbeat,
        desired.tap,
    )
    if not same_devices or not last.pins <= desired.pins or not last.peer_ips <= desired.peer_ips:
        return None
    return [AddPin(mac, ip) for mac, ip in sorted(desired.pins - last.pins)]
