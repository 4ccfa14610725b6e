"""Keep the kernel state the router depends on in place: the bridge (re-created, with its
TAP, container ports and `weave expose` addresses, if someone deletes it) and our firewall
table (re-applied if someone flushes the ruleset). The desired state comes from the
router (io/attachments.py keeps it in LMDB); these functions block: run them in a thread."""

from __future__ import annotations

import logging

from weavenet import dataplane

log = logging.getLogger("weavenet.reconcile")

TAP_MAX_MTU = 65521  # the kernel's limit for a TAP port; the bridge (and containers) match it


def prepare_bridge(bridge: str, offload: bool = False) -> tuple[str, int]:
    """The bridge and its TAP port; returns (tap name, open TAP fd). ``offload`` (the
    fast sleeve): the TAP takes vnet headers and TSO superframes, the bridge's GSO size
    is capped like the container ports'."""
    from weavenet.dataplane.offload import limit_bridge_gso, open_tap

    dataplane.ensure_bridge(bridge, mtu=TAP_MAX_MTU)
    tap = tap_name(bridge)
    dataplane.ensure_tap(tap, bridge)
    if offload:
        limit_bridge_gso(bridge)
    return tap, open_tap(tap, offload)


def tap_name(bridge: str) -> str:
    return f"{bridge}-tap"[:15]


def keep_bridge(bridge: str, firewall: dataplane.FirewallState) -> None:
    """Re-create the bridge if it is gone; put the exposed addresses and rules back."""
    if not dataplane.bridge_exists(bridge):
        log.warning("Bridge %s was deleted: re-creating it", bridge)
        dataplane.ensure_bridge(bridge, mtu=TAP_MAX_MTU)
        dataplane.ensure_tap(tap_name(bridge), bridge)
        ports = dataplane.reattach_ports(bridge)
        log.info("Bridge %s re-created; re-attached %d container port(s)", bridge, len(ports))
    for exposed in firewall.exposed:
        if dataplane.set_bridge_address(exposed.cidr, True, bridge):
            log.info("Re-exposing %s on bridge %s", exposed.cidr, bridge)
    if firewall.exposed and not dataplane.firewall_intact(firewall):
        log.warning("Firewall rules for exposed subnets are missing: re-applying them")
        dataplane.reapply_firewall(firewall)
