"""The ``IPAM`` section of ``/report``: Go's ``ipam.Status`` JSON (surface §1.6), field for
field and in Go's order, plus two fields of ours (contract C): ``Status``, the line
``weave status`` shows, and ``Awaiting``, what the allocator waits for ("" if nothing)."""

from __future__ import annotations

from typing import Any

from weavenet.core.ipam.address import format_address
from weavenet.core.ipam.allocator import IpamStatus
from weavenet.core.peername import format_peer_name


def ipam_report(status: IpamStatus) -> dict[str, Any]:
    """The ``IPAM`` section of ``/report`` (Go ``ipam.Status``) plus our Status/Awaiting."""
    paxos = None
    if status.paxos is not None:
        paxos = {
            "Elector": status.paxos.elector,
            "KnownNodes": status.paxos.known_nodes,
            "Quorum": status.paxos.quorum,
        }
    entries = [
        {
            "Token": format_address(e.token),
            "Size": e.size,
            "Peer": format_peer_name(e.peer),
            "Nickname": e.nickname,
            "IsKnownPeer": e.is_known_peer,
            "Version": e.version,
        }
        for e in status.entries
    ]
    claims = [{"Ident": ident, "CIDR": str(cidr)} for ident, cidr in status.pending_claims]
    return {
        "Paxos": paxos,
        "Range": str(status.universe),
        "RangeNumIPs": status.range_num_ips,
        "ActiveIPs": status.active_ips,
        "DefaultSubnet": str(status.default_subnet),
        "Entries": entries or None,
        "PendingClaims": claims or None,
        "PendingAllocates": list(status.pending_allocates) or None,
        "Status": status.status,
        "Awaiting": status.awaiting,
    }


def ipam_status_section(status: IpamStatus) -> dict[str, Any]:
    """The ``IPAM`` part of the /status report (``RouterControl.status_report``): the lines
    ``weave status`` prints, without formatting the ring's entries."""
    return {
        "Status": status.status,
        "Awaiting": status.awaiting,
        "Range": str(status.universe),
        "DefaultSubnet": str(status.default_subnet),
    }


def with_unconnected_targets(
    section: dict[str, Any], targets: list[dict[str, object]]
) -> dict[str, Any]:
    """While the allocator waits, name the peers we are still trying to reach: they are
    usually what consensus or a space request is missing. ``targets`` are the mesh's rows
    for targets without a live connection (Address, State, Info)."""
    if not section.get("Awaiting") or not targets:
        return section
    shown = []
    for row in targets:
        info = str(row.get("Info") or "").split(", retry:")[0]
        reason = info.rsplit(": ", 1)[-1] if info else ""
        state = f"{row.get('State')}: {reason}" if reason else str(row.get("State"))
        shown.append(f"{row.get('Address')} ({state})")
    section["Awaiting"] += "; peers not connected yet: " + ", ".join(shown)
    return section
