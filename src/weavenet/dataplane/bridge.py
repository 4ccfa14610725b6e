"""The weave bridge and the TAP port the userspace overlay reads and writes.

The bridge gets an explicit MAC at creation so it never changes as ports come and go (the
kernel would otherwise copy the lowest port MAC). The TAP device is persistent: it survives
the router closing its fd, and `open_tap_fd` re-attaches to it.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import struct
import subprocess
from typing import Any

import msgspec

from weavenet.dataplane.netlink import (
    LINK_GONE,
    DataplaneError,
    disable_ipv6,
    ignoring,
    iproute,
    ipv4_addresses,
    kernel_errors,
    link_index,
    link_info,
    link_kind,
    netns_path,
    run_in_netns,
)

DEFAULT_BRIDGE = "weave"
DEFAULT_TAP = "weave-tap"
MAX_MTU = 65535

TUN_DEVICE = "/dev/net/tun"
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000


class BridgeInfo(msgspec.Struct, frozen=True):
    ifindex: int
    mac: str
    mtu: int


def random_mac() -> str:
    """A random locally administered unicast MAC."""
    octets = bytearray(secrets.token_bytes(6))
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in octets)


def _bridge_info(ipr: Any, index: int) -> BridgeInfo:
    msg = link_info(ipr, index)
    return BridgeInfo(index, msg.get("IFLA_ADDRESS"), int(msg.get("IFLA_MTU")))


def require_bridge(ipr: Any, name: str) -> int:
    index = link_index(ipr, name)
    if index is None:
        raise DataplaneError(f"bridge {name} not found (is weave launched?)", errno.ENODEV)
    if link_kind(link_info(ipr, index)) != "bridge":
        raise DataplaneError(f"{name} exists but is not a bridge", errno.EEXIST)
    return index


def ensure_bridge(
    name: str = DEFAULT_BRIDGE,
    mtu: int = MAX_MTU,
    mac: str | None = None,
    netns: str | None = None,
) -> BridgeInfo:
    """Create bridge `name` (MTU `mtu`, MAC `mac` or random) if absent; bring it up.

    An existing bridge keeps its MAC and MTU: the caller sees them in the result.
    """
    with iproute(netns) as ipr, kernel_errors(f"ensure bridge {name}"):
        if link_index(ipr, name) is None:
            with ignoring(errno.EEXIST):
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu, address=mac or random_mac())
        index = require_bridge(ipr, name)
        disable_ipv6(name, netns)  # before "up": the bridge's own IPv6 would flood the mesh
        ipr.link("set", index=index, state="up")
        return _bridge_info(ipr, index)


def bridge_exists(name: str = DEFAULT_BRIDGE, netns: str | None = None) -> bool:
    with iproute(netns) as ipr, kernel_errors(f"look up bridge {name}"):
        index = link_index(ipr, name)
        return index is not None and link_kind(link_info(ipr, index)) == "bridge"


def bridge_info(name: str = DEFAULT_BRIDGE, netns: str | None = None) -> BridgeInfo:
    """ifindex, MAC and MTU of an existing bridge (DataplaneError if absent)."""
    with iproute(netns) as ipr, kernel_errors(f"look up bridge {name}"):
        return _bridge_info(ipr, require_bridge(ipr, name))


def delete_bridge(name: str = DEFAULT_BRIDGE, netns: str | None = None) -> bool:
    """Delete the bridge if present (ports are released, not deleted). True if it existed."""
    return delete_link(name, netns)


def bridge_addresses(
    name: str = DEFAULT_BRIDGE, netns: str | None = None
) -> tuple[str | None, list[ipaddress.IPv4Interface]]:
    """(MAC, IPv4 addresses) of the bridge, for `weave ps weave:expose`; (None, []) if absent."""
    with iproute(netns) as ipr, kernel_errors(f"read addresses of {name}"):
        index = link_index(ipr, name)
        if index is None:
            return None, []
        mac = link_info(ipr, index).get("IFLA_ADDRESS")
        addrs = [ipaddress.IPv4Interface(f"{a}/{p}") for a, p in ipv4_addresses(ipr, index)]
        return mac, addrs


def set_bridge_address(
    cidr: ipaddress.IPv4Interface,
    present: bool,
    name: str = DEFAULT_BRIDGE,
    netns: str | None = None,
) -> bool:
    """Add (present=True) or remove an address on the bridge; True if anything changed."""
    with iproute(netns) as ipr, kernel_errors(f"{'add' if present else 'remove'} {cidr} on {name}"):
        if not present and link_index(ipr, name) is None:
            return False
        index = require_bridge(ipr, name)
        have = (str(cidr.ip), cidr.network.prefixlen) in ipv4_addresses(ipr, index)
        if have == present:
            return False
        command = "add" if present else "del"
        with ignoring(errno.EEXIST, errno.EADDRNOTAVAIL):
            ipr.addr(command, index=index, address=str(cidr.ip), prefixlen=cidr.network.prefixlen)
        if present:
            ipr.link("set", index=index, state="up")
        return True


# --- TAP port -----------------------------------------------------------------------------


def _ifreq(name: str, flags: int) -> bytes:
    raw = name.encode()
    if not raw or len(raw) > 15:
        raise DataplaneError(f"bad interface name {name!r}", errno.EINVAL)
    return struct.pack("16sH22x", raw, flags)


def _tun_open(name: str, flags: int) -> int:
    fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, _ifreq(name, flags))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _create_persistent_tap(name: str) -> None:
    fd = _tun_open(name, IFF_TAP | IFF_NO_PI)
    try:
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
    finally:
        os.close(fd)


def ensure_tap(
    name: str = DEFAULT_TAP,
    bridge: str = DEFAULT_BRIDGE,
    mtu: int = MAX_MTU,
    netns: str | None = None,
) -> int:
    """Create the persistent TAP `name` if absent, enslave it to `bridge`, set MTU, up.

    The MTU is clamped to what the device allows (65521 for a TAP); returns the ifindex.
    """
    with iproute(netns) as ipr, kernel_errors(f"ensure tap {name}"):
        bridge_index = require_bridge(ipr, bridge)
        index = link_index(ipr, name)
        if index is not None and link_kind(link_info(ipr, index)) != "tun":
            raise DataplaneError(f"{name} exists but is not a TAP device", errno.EEXIST)
        if index is None:
            run_in_netns(netns, lambda: _create_persistent_tap(name))
            index = link_index(ipr, name)
            if index is None:
                raise DataplaneError(f"tap {name} vanished after creation", errno.ENODEV)
        max_mtu = link_info(ipr, index).get("IFLA_MAX_MTU")  # a TAP allows 65535 - 14
        ipr.link("set", index=index, mtu=min(mtu, int(max_mtu)) if max_mtu else mtu)
        disable_ipv6(name, netns)
        ipr.link("set", index=index, master=bridge_index, state="up")
        return index


def open_tap_fd(name: str = DEFAULT_TAP, netns: str | None = None, vnet_hdr: bool = False) -> int:
    """Open /dev/net/tun attached to the existing TAP `name` (IFF_TAP|IFF_NO_PI, blocking).

    The caller owns the fd (set it non-blocking for asyncio; close it to detach).
    """
    flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
    with iproute(netns) as ipr, kernel_errors(f"open tap {name}"):
        index = link_index(ipr, name)
        if index is None or link_kind(link_info(ipr, index)) != "tun":
            raise DataplaneError(f"tap {name} not found (ensure_tap first)", errno.ENODEV)
        return run_in_netns(netns, lambda: _tun_open(name, flags))


def delete_link(name: str, netns: str | None = None) -> bool:
    """Delete link `name` if present (e.g. the TAP on `weave reset`). True if it existed."""
    with iproute(netns) as ipr, kernel_errors(f"delete {name}"):
        index = link_index(ipr, name)
        if index is None:
            return False
        with ignoring(*LINK_GONE):
            ipr.link("del", index=index)
        return True


# --- expose / hide: bridge addresses + one nftables table of our own -----------------------

FW_FAMILY = "ip"
FW_TABLE = "weavenet"
MULTICAST = "224.0.0.0/4"
_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class Exposed(msgspec.Struct, frozen=True):
    cidr: ipaddress.IPv4Interface
    masquerade: bool = True


class FirewallState(msgspec.Struct, frozen=True):
    """What our nftables table should hold; the router persists it and re-applies it."""

    bridge: str = DEFAULT_BRIDGE
    exposed: tuple[Exposed, ...] = ()

    def with_exposed(self, cidr: ipaddress.IPv4Interface, masquerade: bool) -> FirewallState:
        kept = tuple(e for e in self.exposed if e.cidr != cidr)
        return FirewallState(self.bridge, (*kept, Exposed(cidr, masquerade)))

    def without(self, cidr: ipaddress.IPv4Interface) -> FirewallState:
        return FirewallState(self.bridge, tuple(e for e in self.exposed if e.cidr != cidr))

    def to_json(self) -> dict[str, Any]:
        exposed = [{"cidr": str(e.cidr), "masquerade": e.masquerade} for e in self.exposed]
        return {"bridge": self.bridge, "exposed": exposed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FirewallState:
        exposed = tuple(
            Exposed(ipaddress.IPv4Interface(e["cidr"]), bool(e.get("masquerade", True)))
            for e in data.get("exposed", [])
        )
        return cls(str(data.get("bridge", DEFAULT_BRIDGE)), exposed)


def _chains(state: FirewallState) -> dict[str, list[str]]:
    """Chain name -> rules (surface §6.7: nat/WEAVE, filter/WEAVE-EXPOSE + FORWARD rules)."""
    if not set(state.bridge) <= _NAME_OK:
        raise DataplaneError(f"bad bridge name {state.bridge!r}", errno.EINVAL)
    br = f'"{state.bridge}"'
    nat: list[str] = []
    forward: list[str] = []
    for e in state.exposed:
        net = e.cidr.network
        if e.masquerade:
            nat.append(f"ip saddr {net} ip daddr {MULTICAST} return")
            nat.append(f"ip daddr {net} ip saddr != {net} masquerade")
            nat.append(f"ip saddr {net} ip daddr != {net} masquerade")
        forward.append(f"oifname {br} ip daddr {net} accept")
    forward += [
        f"iifname {br} oifname {br} accept",
        f"iifname {br} oifname != {br} accept",
        f"oifname {br} ct state established,related accept",
        f"oifname {br} drop",
    ]
    return {"postrouting": nat, "forward": forward}


_HOOKS = {
    "postrouting": "type nat hook postrouting priority srcnat; policy accept;",
    "forward": "type filter hook forward priority filter; policy accept;",
}


def firewall_script(state: FirewallState) -> str:
    """An `nft -f` script replacing our table atomically (one transaction)."""
    table = f"table {FW_FAMILY} {FW_TABLE}"
    lines = [f"{table} {{}}", f"delete {table}", f"{table} {{"]
    for chain, rules in _chains(state).items():
        lines.append(f"  chain {chain} {{")
        lines.append(f"    {_HOOKS[chain]}")
        lines += [f"    {rule}" for rule in rules]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _nft(
    args: list[str], netns: str | None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    nft = shutil.which("nft")
    if nft is None:
        raise DataplaneError("the nft binary is not installed", errno.ENOENT)
    path = netns_path(netns)
    argv = [nft, *args] if path is None else ["nsenter", f"--net={path}", nft, *args]
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataplaneError(f"nft {' '.join(args)}: {exc}") from exc


def reapply_firewall(state: FirewallState, netns: str | None = None) -> None:
    """Replace our nftables table with the one `state` describes (atomic)."""
    proc = _nft(["-f", "-"], netns, firewall_script(state))
    if proc.returncode != 0:
        raise DataplaneError(f"nft -f failed: {proc.stderr.strip()}")


def remove_firewall(netns: str | None = None) -> None:
    """Delete our table if present (`weave reset`)."""
    _nft(["delete", "table", FW_FAMILY, FW_TABLE], netns)


def firewall_intact(state: FirewallState, netns: str | None = None) -> bool:
    """True if our table exists with every chain holding the rules `state` asks for."""
    proc = _nft(["-j", "list", "table", FW_FAMILY, FW_TABLE], netns)
    if proc.returncode != 0:
        return False
    try:
        items = json.loads(proc.stdout)["nftables"]
    except (ValueError, KeyError, TypeError):
        return False
    chains = {i["chain"]["name"] for i in items if "chain" in i}
    counts: dict[str, int] = {}
    for item in items:
        if "rule" in item:
            counts[item["rule"]["chain"]] = counts.get(item["rule"]["chain"], 0) + 1
    want = _chains(state)
    return set(want) <= chains and all(counts.get(c, 0) == len(r) for c, r in want.items())


def expose(
    cidr: ipaddress.IPv4Interface,
    bridge: str = DEFAULT_BRIDGE,
    masquerade: bool = True,
    *,
    state: FirewallState | None = None,
    netns: str | None = None,
) -> FirewallState:
    """`weave expose`: put `cidr` on the bridge, add its NAT/accept rules. Idempotent.

    Returns the new desired state; the caller persists it and passes it back next time.
    """
    new = (state or FirewallState(bridge)).with_exposed(cidr, masquerade)
    set_bridge_address(cidr, True, new.bridge, netns)
    reapply_firewall(new, netns)
    return new


def hide(
    cidr: ipaddress.IPv4Interface, *, state: FirewallState, netns: str | None = None
) -> FirewallState:
    """`weave hide`: remove `cidr` from the bridge and its rules. Idempotent."""
    new = state.without(cidr)
    set_bridge_address(cidr, False, new.bridge, netns)
    reapply_firewall(new, netns)
    return new
