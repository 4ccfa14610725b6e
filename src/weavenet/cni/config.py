"""What a CNI invocation gives us: the environment (CNI_*) and the network configuration
on stdin, checked as CNI 1.0.0 says, with Weave's fields (weave-surface.md §6.3).

Config fields we read: ``cniVersion``, ``name``, ``type``, ``bridge`` (default ``weave``),
``mtu`` (default: the bridge's), ``hairpinMode`` (default true), ``isGateway`` and
``ipMasq`` (true is refused, as Weave does), ``dns`` (copied into the result),
``ipamTimeout`` (seconds an allocation may wait, default 30; ours), ``prevResult``
(CHECK), and ``ipam``: ``type`` (absent, "" or ``weave-ipam``: the router's IPAM; other:
that plugin is run), ``subnet``, ``gateway``, ``routes`` [{dst, gw}] and ``addresses``
[{address}] (claimed instead of allocated; ours, as the ``static`` plugin spells it).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from weavenet.cni.errors import (
    DECODING_FAILURE,
    INCOMPATIBLE_VERSION,
    INVALID_CONFIG,
    INVALID_ENV,
    UNSUPPORTED_FIELD,
    CniError,
)

SPEC_VERSION = "1.0.0"
SUPPORTED_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0")
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION")
BUILTIN_IPAM = ("", "weave-ipam")
DEFAULT_IPAM_TIMEOUT = 30.0
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
Cidr = ipaddress.IPv4Interface


@dataclass(frozen=True)
class Env:
    command: str
    container_id: str
    netns: str
    ifname: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class IpamConf:
    type: str = ""
    subnet: ipaddress.IPv4Network | None = None
    gateway: ipaddress.IPv4Address | None = None
    routes: tuple[tuple[ipaddress.IPv4Network, ipaddress.IPv4Address | None], ...] | None = None
    addresses: tuple[Cidr, ...] = ()

    @property
    def builtin(self) -> bool:
        return self.type in BUILTIN_IPAM


@dataclass(frozen=True)
class NetConf:
    cni_version: str
    name: str
    bridge: str = "weave"
    mtu: int | None = None
    hairpin: bool = True
    ipam: IpamConf = field(default_factory=IpamConf)
    dns: Mapping[str, Any] = field(default_factory=dict)
    ipam_timeout: float = DEFAULT_IPAM_TIMEOUT
    prev_result: Mapping[str, Any] | None = None
    raw: bytes = b""


def _need(env: Mapping[str, str], key: str, why: str) -> str:
    value = env.get(key, "")
    if not value:
        raise CniError(INVALID_ENV, f"{key} is not set: the runtime must pass it ({why})")
    return value


def parse_env(env: Mapping[str, str]) -> Env:
    """The CNI_* variables for this command (INVALID_ENV naming the one missing or bad)."""
    command = _need(env, "CNI_COMMAND", "one of " + ", ".join(COMMANDS))
    if command not in COMMANDS:
        raise CniError(
            INVALID_ENV, f"unknown CNI_COMMAND {command!r}: expected one of {', '.join(COMMANDS)}"
        )
    if command == "VERSION":
        return Env(command, "", "", "", ())
    cid = _need(env, "CNI_CONTAINERID", "the container's id")
    if not _CONTAINER_ID.fullmatch(cid):
        raise CniError(
            INVALID_ENV,
            f"invalid CNI_CONTAINERID {cid!r}: letters, digits, '_', '.' and '-' only,"
            " starting with a letter or digit",
        )
    netns = env.get("CNI_NETNS", "")
    if command != "DEL" and not netns:
        _need(env, "CNI_NETNS", "the container's network namespace file")
    ifname = _need(env, "CNI_IFNAME", "the interface name to create, e.g. eth0")
    if len(ifname) > 15 or ifname in (".", "..") or re.search(r"[/:\s]", ifname):
        raise CniError(INVALID_ENV, f"invalid CNI_IFNAME {ifname!r}: at most 15 characters, "
                       "no '/', ':' or spaces")  # fmt: skip
    path = tuple(p for p in env.get("CNI_PATH", "").split(":") if p)
    return Env(command, cid, netns, ifname, path)


def _decode(stdin: bytes) -> dict[str, Any]:
    try:
        data = json.loads(stdin)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CniError(
            DECODING_FAILURE, f"the network configuration on stdin is not JSON: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise CniError(DECODING_FAILURE, "the network configuration on stdin is not a JSON object")
    return data


def config_version(stdin: bytes) -> str:
    """The cniVersion the caller asked for, if any can be read (for error objects)."""
    try:
        version = json.loads(stdin).get("cniVersion")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return SPEC_VERSION
    return version if version in SUPPORTED_VERSIONS else SPEC_VERSION


def _typed(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise CniError(INVALID_CONFIG, f"config field {key!r} must be a {name}, not {value!r}")
    return value


def _ip(text: Any, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(str(text))
    except ValueError:
        raise CniError(INVALID_CONFIG, f"{what} {text!r} is not an IPv4 address") from None


def _net(text: Any, what: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(str(text))
    except ValueError as exc:
        raise CniError(INVALID_CONFIG, f"{what} {text!r} is not an IPv4 subnet: {exc}") from None


def _cidr(text: Any, what: str) -> Cidr:
    try:
        return ipaddress.IPv4Interface(str(text))
    except ValueError:
        raise CniError(INVALID_CONFIG, f"{what} {text!r} is not an IPv4 address/prefix") from None


def _routes(data: Any) -> tuple[tuple[ipaddress.IPv4Network, ipaddress.IPv4Address | None], ...]:
    if not isinstance(data, list) or not all(isinstance(r, dict) and "dst" in r for r in data):
        raise CniError(INVALID_CONFIG, 'ipam "routes" must be a list of {"dst": CIDR, "gw": IP}')
    return tuple(
        (_net(r["dst"], "route dst"), _ip(r["gw"], "route gw") if r.get("gw") else None)
        for r in data
    )


def parse_ipam(data: Any) -> IpamConf:
    if data is None:
        return IpamConf()
    if not isinstance(data, dict):
        raise CniError(INVALID_CONFIG, 'config field "ipam" must be an object')
    addresses = _typed(data, "addresses", list, [])
    if not all(isinstance(a, dict) and "address" in a for a in addresses):
        raise CniError(INVALID_CONFIG, 'ipam "addresses" must be a list of {"address": CIDR}')
    return IpamConf(
        type=_typed(data, "type", str, ""),
        subnet=_net(data["subnet"], "ipam subnet") if data.get("subnet") else None,
        gateway=_ip(data["gateway"], "ipam gateway") if data.get("gateway") else None,
        routes=_routes(data["routes"]) if data.get("routes") is not None else None,
        addresses=tuple(_cidr(a["address"], "ipam address") for a in addresses),
    )


def parse_netconf(stdin: bytes) -> NetConf:
    """The network configuration (DECODING_FAILURE / INVALID_CONFIG / INCOMPATIBLE_VERSION)."""
    data = _decode(stdin)
    version = _typed(data, "cniVersion", str, "")
    if not version:
        raise CniError(INVALID_CONFIG, 'the network configuration has no "cniVersion"')
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"cniVersion {version} is not supported: use one of {', '.join(SUPPORTED_VERSIONS)}",
        )
    for flag, what in (("isGateway", "Gateway"), ("ipMasq", "IP Masquerading")):
        if _typed(data, flag, bool, False):
            raise CniError(
                UNSUPPORTED_FIELD,
                f'{what} functionality not supported ("{flag}": true): remove it; '
                "weave masquerades through 'weave expose'",
            )
    mtu = _typed(data, "mtu", int, 0)
    if mtu and not 68 <= mtu <= 65535:
        raise CniError(INVALID_CONFIG, f"config field 'mtu' {mtu} is out of range 68-65535")
    prev = _typed(data, "prevResult", dict, None)
    return NetConf(
        cni_version=version,
        name=_typed(data, "name", str, ""),
        bridge=_typed(data, "bridge", str, "") or "weave",
        mtu=mtu or None,
        hairpin=_typed(data, "hairpinMode", bool, True),
        ipam=parse_ipam(data.get("ipam")),
        dns=_typed(data, "dns", dict, {}),
        ipam_timeout=float(_typed(data, "ipamTimeout", (int, float), DEFAULT_IPAM_TIMEOUT)),
        prev_result=prev,
        raw=stdin,
    )
