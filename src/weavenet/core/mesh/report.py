"""The ``Router`` section of Weave's /report JSON, built from the router core's state."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from weavenet import __version__
from weavenet.core.mesh.handshake import PROTOCOL_MAX_VERSION
from weavenet.core.peername import format_peer_name

if TYPE_CHECKING:
    from weavenet.core.mesh.conn import MeshConn
    from weavenet.core.mesh.peers import Peers
    from weavenet.core.mesh.router import Router
    from weavenet.core.overlay.datapath import Datapath

PROTOCOL_MIN_SUPPORTED = 2  # we speak only V2 (every weave >= 1.2 does)


def connection_status(router: Router, conn: MeshConn) -> dict[str, Any]:
    """mesh's LocalConnectionStatus for one registered connection."""
    attrs: dict[str, Any] | None = None
    if conn.overlay is not None:
        attrs = dict(conn.overlay.attrs()) or None
    name = (attrs or {}).get("name", "none")
    info = f"{name:<6} {conn.peer_label()}"
    if router.config.password is not None:
        if conn.untrusted:
            info = f"{'encrypted':<11} {info}"
            if attrs is not None:
                attrs["encrypted"] = True
        else:
            info = f"{'unencrypted':<11} {info}"
    return {
        "Address": conn.remote_addr,
        "Outbound": conn.outbound,
        "State": "established" if conn.established else "pending",
        "Info": info,
        "Attrs": attrs,
    }


# the first fields of ``Router``, shared by /report and /status (Go's field order)
IDENTITY_FIELDS = (
    "Protocol",
    "ProtocolMinVersion",
    "ProtocolMaxVersion",
    "Encryption",
    "PeerDiscovery",
    "Name",
    "NickName",
)


def _identity(router: Router) -> dict[str, Any]:
    values = (
        "weave",
        PROTOCOL_MIN_SUPPORTED,
        PROTOCOL_MAX_VERSION,
        router.config.password is not None,
        router.config.discovery,
        format_peer_name(router.name),
        router.config.nickname,
    )
    return dict(zip(IDENTITY_FIELDS, values, strict=True))


def router_report(router: Router, wall_offset: float, routes: bool = True) -> dict[str, Any]:
    """``wall_offset`` turns the core's monotonic ``now`` into Unix time for display."""
    connections = [connection_status(router, c) for c in router.by_peer.values()]
    for row in router.maker.status(wall_offset):
        connections.append({**row, "Attrs": None})
    targets = router.maker.direct_peers()
    report: dict[str, Any] = {
        **_identity(router),
        "Port": router.config.port,
        "Peers": router.peers.peer_status_list(),
        "Connections": connections,
        "TerminationCount": router.maker.termination_count,
        "Targets": targets or None,
        "OverlayDiagnostics": router.overlay.diagnostics(),
        "TrustedSubnets": [str(net) for net in router.config.trusted_subnets],
        "Interface": "",
        "CaptureStats": None,
        "MACs": None,
    }
    if not routes:
        return report
    # a breadth-first search per source: only for those who ask; in Go's key order
    ordered: dict[str, Any] = {}
    for key, value in report.items():
        ordered[key] = value
        if key == "Peers":
            ordered["UnicastRoutes"] = router.fresh_routes().unicast_status()
            ordered["BroadcastRoutes"] = router.fresh_routes().broadcast_status(router.peers)
    return ordered


def _preamble() -> dict[str, Any]:
    return {
        "Ready": True,
        "Version": __version__,
        "VersionCheck": {
            "Enabled": False,
            "Success": False,
            "NewVersion": "",
            "NextCheckAt": "0001-01-01T00:00:00Z",
        },
    }


def full_report(router: Router, wall_offset: float, routes: bool = True) -> dict[str, Any]:
    return {**_preamble(), "Router": router_report(router, wall_offset, routes)}


def peer_connection_counts(peers: Peers) -> tuple[int, int]:
    """(established, pending) over every known peer's connections, ours included: the
    ``Peers:`` line of ``weave status``.

    Counted on the topology's adjacency (per peer, remote -> established), which each
    peer's entry change rebuilds and route computation keeps current anyway: no row of
    /report is made, and the sums over N^2 booleans run in C."""
    established = total = 0
    for adjacent in peers.adjacency().values():
        total += len(adjacent)
        established += sum(adjacent.values())
    return established, total - established


def _our_connection_states(router: Router) -> dict[str, int]:
    """Our connections (registered ones and targets without one) by ``State``, as the
    ``Connections`` rows of /report give them."""
    counts = {"established": 0, "pending": 0}
    for conn in router.by_peer.values():
        counts["established" if conn.established else "pending"] += 1
    for state, count in router.maker.state_counts().items():
        counts[state] = counts.get(state, 0) + count
    return counts


def router_status(router: Router) -> dict[str, Any]:
    """The ``Router`` part of the /status report (``RouterControl.status_report``): the
    fields ``weave status`` prints, and counts where it only counts /report's lists."""
    established, pending = peer_connection_counts(router.peers)
    return {
        **_identity(router),
        "TargetCount": len(router.maker.direct_peers()),
        "ConnectionCounts": _our_connection_states(router),
        "PeerCount": len(router.peers),
        "PeerConnectionCounts": {"established": established, "pending": pending},
        "TrustedSubnets": [str(net) for net in router.config.trusted_subnets],
    }


def status_report(router: Router) -> dict[str, Any]:
    """What ``GET /status`` needs of the mesh, without the lists of :func:`full_report`."""
    return {**_preamble(), "Router": router_status(router)}


def datapath_report(datapath: Datapath, router: Router, wall_offset: float) -> dict[str, Any]:
    """The data-plane parts of ``Router``: the interface, learnt MACs and counters."""
    macs = []
    for mac, peer, seen in datapath.forwarder.macs.entries():
        known = router.peers.get(peer)
        moment = datetime.datetime.fromtimestamp(seen + wall_offset, tz=datetime.UTC)
        macs.append(
            {
                "Mac": mac.hex(":"),
                "Name": format_peer_name(peer),
                "NickName": known.nickname if known is not None else "",
                "LastSeen": moment.isoformat().replace("+00:00", "Z"),
            }
        )
    return {
        "Interface": "weave-tap (via tap)",
        "MACs": macs or None,
        "DatapathStats": datapath.stats(),
    }
