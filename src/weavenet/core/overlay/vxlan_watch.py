"""Which kernel notifications mean fastdp's kernel state drifted from the plan (issue 10).

Observing the kernel (a dump of the links and of the whole fdb) costs ~0.25 ms of CPU
per peer; doing it every few seconds in every router to catch someone deleting our
entries kept a good part of a small machine busy while a large mesh converged. Instead
the dataplane listens to the link and neighbour notifications and hands over, as the
values below, those about our devices, the bridge's ports and our data device's fdb;
:func:`drifted` says which of them contradict the plan, and only those bring an
observing round forward.

Our own rounds cause notifications too (a pin replaced, a learnt entry deleted, a device
fixed): they are judged against the plan the round is applying, so a deletion it made
on purpose (the entry is not in the plan) is no drift; a device seen half-way through a
fix may cost one extra observing round, never a loop (that round finds nothing to do).
"""

from __future__ import annotations

import msgspec

from weavenet.core.overlay.vxlan_plan import Desired, DeviceSeen, DeviceSpec, device_ops


class DeviceIndexes(msgspec.Struct, frozen=True):
    """The ifindexes of what fastdp watches (None: not there, or not known yet)."""

    data: int | None = None
    heartbeat: int | None = None
    bridge: int | None = None

    def updated(self, created: dict[str, int], desired: Desired) -> DeviceIndexes:
        """After devices were (re)created: ``created`` maps their names to new indexes."""
        return DeviceIndexes(
            created.get(desired.data.name, self.data),
            created.get(desired.heartbeat.name, self.heartbeat),
            self.bridge,
        )


class LinkGone(msgspec.Struct, frozen=True):
    """RTM_DELLINK of one of our devices."""

    index: int


class LinkSeen(msgspec.Struct, frozen=True):
    """RTM_NEWLINK (a change) of one of our devices, read as the plan reads a device."""

    index: int
    name: str
    seen: DeviceSeen


class PortChanged(msgspec.Struct, frozen=True):
    """The bridge's own RTM_NEWLINK (AF_BRIDGE) about one of its ports: ours are the data
    device and the TAP, which must both be isolated (None: the message did not say)."""

    index: int
    name: str
    isolated: bool | None


class FdbGone(msgspec.Struct, frozen=True):
    """RTM_DELNEIGH (AF_BRIDGE) on our data device: its VXLAN entry ``mac dst ip`` or,
    with ``dst`` None, the bridge's entry for ``mac`` at that port."""

    mac: str
    dst: str | None


class EventsLost(msgspec.Struct, frozen=True):
    """The notification socket overflowed: anything may have happened meanwhile."""


KernelEvent = LinkGone | LinkSeen | PortChanged | FdbGone | EventsLost


def _spec_at(index: int, desired: Desired, indexes: DeviceIndexes) -> DeviceSpec | None:
    if index == indexes.data:
        return desired.data
    if index == indexes.heartbeat:
        return desired.heartbeat
    return None


def drifted(event: KernelEvent, desired: Desired, indexes: DeviceIndexes) -> bool:
    """True when ``event`` means the kernel may no longer hold what ``desired`` plans."""
    if isinstance(event, EventsLost):
        return True
    if isinstance(event, FdbGone):
        if event.dst is None:
            return any(mac == event.mac for mac, _ in desired.pins)
        return (event.mac, event.dst) in desired.pins
    if isinstance(event, PortChanged):
        ours = event.index == indexes.data or event.name == desired.tap
        return ours and event.isolated is not True
    spec = _spec_at(event.index, desired, indexes)
    if spec is None:
        return False
    if isinstance(event, LinkGone):
        return True
    return event.name != spec.name or bool(device_ops(spec, event.seen))
