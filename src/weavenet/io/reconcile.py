"""Keep the kernel state the router depends on in place: the bridge (re-created, with
its TAP and container ports, if someone deletes it) and our firewall table (re-applied
from ``<state-dir>/firewall.json`` if someone flushes the ruleset)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from weavenet import dataplane

log = logging.getLogger("weavenet.reconcile")

RECONCILE_INTERVAL = 5.0
FIREWALL_FILE = "firewall.json"
TAP_MAX_MTU = 65521  # the kernel's limit for a TAP port; the bridge (and containers) match it


def prepare_bridge(bridge: str) -> tuple[str, int]:
    """The bridge and its TAP port; returns (tap name, open TAP fd). Blocking netlink:
    run it off the event loop."""
    dataplane.ensure_bridge(bridge, mtu=TAP_MAX_MTU)
    tap = tap_name(bridge)
    dataplane.ensure_tap(tap, bridge)
    return tap, dataplane.open_tap_fd(tap)


def tap_name(bridge: str) -> str:
    return f"{bridge}-tap"[:15]


def reconcile_once(bridge: str, state_dir: Path) -> None:
    if not dataplane.bridge_exists(bridge):
        log.warning("Bridge %s was deleted: re-creating it", bridge)
        dataplane.ensure_bridge(bridge, mtu=TAP_MAX_MTU)
        dataplane.ensure_tap(tap_name(bridge), bridge)
        ports = dataplane.reattach_ports(bridge)
        log.info("Bridge %s re-created; re-attached %d container port(s)", bridge, len(ports))
    path = state_dir / FIREWALL_FILE
    if not path.exists():
        return
    state = dataplane.FirewallState.from_json(json.loads(path.read_text()))
    if not dataplane.firewall_intact(state):
        log.warning("Firewall rules for exposed subnets are missing: re-applying them")
        dataplane.reapply_firewall(state)


async def reconcile_forever(bridge: str, state_dir: Path) -> None:
    """Runs until cancelled; a failing round is logged and retried next time."""
    while True:
        await asyncio.sleep(RECONCILE_INTERVAL)  # a period, not a synchronisation
        try:
            await asyncio.to_thread(reconcile_once, bridge, state_dir)
        except (OSError, ValueError, dataplane.DataplaneError) as exc:
            log.error("reconcile: %s", exc)
