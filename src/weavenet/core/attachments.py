"""Container attachments as desired state: what the router keeps wired to the weave bridge.

The router owns one `AttachmentTable`. Every few seconds the shell observes each
attachment in the kernel (an `Observation`: facts only) and `plan()` turns the difference
into `Action`s. Table changes (`Rebind`, `RecordMac`, `Drop`) are persisted before any
kernel action is applied; kernel actions are idempotent, so a plan applied twice is a
plan applied once, and observing after applying a plan yields an empty plan.

When a container is gone for good (the rules are in `_gone`), its attachment is dropped
and its IPAM addresses are released; a container that merely stopped (a Docker container
that still exists) keeps its attachment and gets its interface back when it runs again,
with the same addresses and the same MAC, so its neighbours' ARP caches stay right.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any

import msgspec
import msgspec.structs

from weavenet.core.errors import WeaveError

Cidr = ipaddress.IPv4Interface
CONTAINER_IFNAME = "ethwe"
EXPOSE_IDENT = "weave:expose"


class Kind(Enum):
    """How a container was named to `weave attach`; it decides when it is gone for good."""

    NETNS = "netns"  # netns:NAME or netns:/path: gone when the namespace file is gone
    PID = "pid"  # pid:PID: gone when /proc/PID is gone or holds another namespace
    DOCKER = "docker"  # gone when Docker says the container no longer exists


def kind_of(spec: str) -> Kind:
    if spec.startswith("netns:"):
        return Kind.NETNS
    if spec.startswith("pid:"):
        return Kind.PID
    return Kind.DOCKER


class Attachment(msgspec.Struct, frozen=True):
    ident: str  # the container reference: netns:NAME, pid:PID or a full Docker id
    spec: str  # what the user named it by (a Docker name, say)
    netns_path: str  # the namespace file last seen holding the container
    netns_id: str  # "dev:ino" of that namespace (tells a reused pid or name apart)
    cidrs: tuple[Cidr, ...]
    multicast_route: bool = True
    mac: str | None = None  # ethwe's MAC once it has been created
    dns_name: str | None = None
    ifname: str = CONTAINER_IFNAME

    @property
    def kind(self) -> Kind:
        return kind_of(self.spec)

    def with_cidrs(self, cidrs: Iterable[Cidr]) -> Attachment:
        """Our addresses plus `cidrs`, in order, one entry per IP (the latest prefix wins)."""
        merged: dict[ipaddress.IPv4Address, Cidr] = {c.ip: c for c in self.cidrs}
        for cidr in cidrs:
            merged[cidr.ip] = cidr
        return msgspec.structs.replace(self, cidrs=tuple(merged.values()))

    def to_record(self) -> dict[str, Any]:
        return {
            "ident": self.ident,
            "spec": self.spec,
            "netns": self.netns_path,
            "netns_id": self.netns_id,
            "cidrs": [str(c) for c in self.cidrs],
            "multicast_route": self.multicast_route,
            "mac": self.mac,
            "dns_name": self.dns_name,
            "ifname": self.ifname,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Attachment:
        """Inverse of `to_record`; ValueError (with the field) on a malformed record."""
        try:
            return cls(
                ident=str(data["ident"]),
                spec=str(data["spec"]),
                netns_path=str(data["netns"]),
                netns_id=str(data["netns_id"]),
                cidrs=tuple(ipaddress.IPv4Interface(str(c)) for c in data["cidrs"]),
                multicast_route=bool(data.get("multicast_route", True)),
                mac=None if data.get("mac") is None else str(data["mac"]),
                dns_name=None if data.get("dns_name") is None else str(data["dns_name"]),
                ifname=str(data.get("ifname", CONTAINER_IFNAME)),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed attachment record: {exc!r}") from None


class AttachRequest(msgspec.Struct, frozen=True):
    """POST /attach: wire this container with these addresses (merged with earlier ones)."""

    ident: str
    spec: str
    netns_path: str
    cidrs: tuple[Cidr, ...]
    multicast_route: bool = True
    dns_name: str | None = None


class AttachmentError(WeaveError):
    """A request the router cannot carry out; `internal` if the kernel refused, not the
    caller (HTTP 500 rather than 400)."""

    def __init__(self, message: str, internal: bool = False) -> None:
        super().__init__(message)
        self.internal = internal


# --- what the dataplane observed ---------------------------------------------------------


class ContainerState(Enum):
    RUNNING = "running"  # its namespace is there (netns_path / netns_id say which)
    STOPPED = "stopped"  # a Docker container that exists but is not running
    REMOVED = "removed"  # the namespace file (netns:, pid:) or the Docker container is gone
    UNKNOWN = "unknown"  # could not tell (Docker daemon unreachable): change nothing


class LinkState(msgspec.Struct, frozen=True):
    """ethwe inside the container, and its host end."""

    mac: str
    cidrs: frozenset[Cidr]
    multicast_route: bool
    on_bridge: bool  # the host end of the veth is a port of the weave bridge


class Observation(msgspec.Struct, frozen=True):
    container: ContainerState
    netns_path: str | None = None  # where the container's namespace is now
    netns_id: str | None = None
    link: LinkState | None = None  # None: no ethwe in the container


# --- actions -----------------------------------------------------------------------------


class Rebind(msgspec.Struct, frozen=True):
    """Table change: the container lives in a new namespace (restarted, or re-created name)."""

    ident: str
    netns_path: str
    netns_id: str


class RecordMac(msgspec.Struct, frozen=True):
    """Table change: remember ethwe's MAC, to reuse it when the interface is re-created."""

    ident: str
    mac: str


class Drop(msgspec.Struct, frozen=True):
    """Table change: the container is gone for good; release its addresses."""

    ident: str
    reason: str


class CreateInterface(msgspec.Struct, frozen=True):
    """Kernel: create ethwe (veth on the bridge) with the attachment's MAC, addresses, route."""

    attachment: Attachment


class AddAddresses(msgspec.Struct, frozen=True):
    attachment: Attachment
    cidrs: tuple[Cidr, ...]


class AddMulticastRoute(msgspec.Struct, frozen=True):
    attachment: Attachment


class ReattachPort(msgspec.Struct, frozen=True):
    """Kernel: put the host end of ethwe back on the bridge (it was re-created)."""

    attachment: Attachment


TableChange = Rebind | RecordMac | Drop
KernelAction = CreateInterface | AddAddresses | AddMulticastRoute | ReattachPort
Action = TableChange | KernelAction


def _gone(att: Attachment, obs: Observation) -> str | None:
    """Why the container is gone for good, or None if it is not."""
    if obs.container is ContainerState.REMOVED:
        if att.kind is Kind.DOCKER:
            return "the Docker container no longer exists"
        return f"namespace {att.netns_path} no longer exists"
    if att.kind is Kind.PID and obs.netns_id is not None and obs.netns_id != att.netns_id:
        return f"process {att.ident.removeprefix('pid:')} now holds another namespace"
    return None


def _kernel_actions(att: Attachment, link: LinkState | None) -> list[Action]:
    if link is None:
        return [CreateInterface(att)]
    actions: list[Action] = []
    if link.mac != att.mac:
        actions.append(RecordMac(att.ident, link.mac))
    missing = tuple(c for c in att.cidrs if c not in link.cidrs)
    if missing:
        actions.append(AddAddresses(att, missing))
    if att.multicast_route and not link.multicast_route:
        actions.append(AddMulticastRoute(att))
    if not link.on_bridge:
        actions.append(ReattachPort(att))
    return actions


def plan_one(att: Attachment, obs: Observation) -> list[Action]:
    """The actions that make the kernel match `att`, given what was observed."""
    reason = _gone(att, obs)
    if reason is not None:
        return [Drop(att.ident, reason)]
    if obs.container is not ContainerState.RUNNING or obs.netns_path is None:
        return []  # stopped, or cannot tell: keep the attachment, touch nothing
    actions: list[Action] = []
    if obs.netns_id is not None and (obs.netns_path, obs.netns_id) != (
        att.netns_path,
        att.netns_id,
    ):
        actions.append(Rebind(att.ident, obs.netns_path, obs.netns_id))
        att = msgspec.structs.replace(att, netns_path=obs.netns_path, netns_id=obs.netns_id)
    return actions + _kernel_actions(att, obs.link)


def plan(table: AttachmentTable, observations: Mapping[str, Observation]) -> list[Action]:
    """Actions for every attachment that was observed; table changes come first."""
    actions: list[Action] = []
    for att in table.all():
        obs = observations.get(att.ident)
        if obs is not None:
            actions += plan_one(att, obs)
    changes = [a for a in actions if isinstance(a, Rebind | RecordMac | Drop)]
    return changes + [a for a in actions if not isinstance(a, Rebind | RecordMac | Drop)]


# --- the table ---------------------------------------------------------------------------


class AttachmentTable:
    """ident -> Attachment, in the order they were first attached."""

    def __init__(self, records: Iterable[Attachment] = ()) -> None:
        self._by_ident: dict[str, Attachment] = {a.ident: a for a in records}

    def __len__(self) -> int:
        return len(self._by_ident)

    def get(self, ident: str) -> Attachment | None:
        return self._by_ident.get(ident)

    def all(self) -> list[Attachment]:
        return list(self._by_ident.values())

    def add(self, att: Attachment) -> Attachment:
        """Attach, or for a known ident merge: its addresses gain `att`'s, the rest is `att`'s
        (the MAC is kept unless `att` has one). Returns what the table now holds."""
        old = self._by_ident.get(att.ident)
        if old is not None:
            att = msgspec.structs.replace(att, cidrs=old.cidrs, mac=att.mac or old.mac).with_cidrs(
                att.cidrs
            )
        self._by_ident[att.ident] = att
        return att

    def remove(self, ident: str) -> Attachment | None:
        return self._by_ident.pop(ident, None)

    def remove_cidrs(
        self, ident: str, ips: Sequence[ipaddress.IPv4Address] | None
    ) -> tuple[tuple[Cidr, ...], Attachment | None]:
        """Forget the addresses with these IPs (all if None): (removed, what is left or None
        if nothing is, in which case the attachment is gone from the table)."""
        att = self._by_ident.get(ident)
        if att is None:
            return (), None
        wanted = None if ips is None else set(ips)
        removed = tuple(c for c in att.cidrs if wanted is None or c.ip in wanted)
        kept = tuple(c for c in att.cidrs if c not in removed)
        if not kept:
            del self._by_ident[ident]
            return removed, None
        left = msgspec.structs.replace(att, cidrs=kept)
        self._by_ident[ident] = left
        return removed, left

    def change(self, action: TableChange) -> Attachment | None:
        """Apply a table change; returns the updated attachment (None once dropped)."""
        att = self._by_ident.get(action.ident)
        if att is None:
            return None
        if isinstance(action, Drop):
            del self._by_ident[action.ident]
            return None
        if isinstance(action, Rebind):
            att = msgspec.structs.replace(
                att, netns_path=action.netns_path, netns_id=action.netns_id
            )
        else:
            att = msgspec.structs.replace(att, mac=action.mac)
        self._by_ident[att.ident] = att
        return att
