"""Mesh-level helpers on top of the harness: read a router's view, wait for a full mesh."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from weavenet.harness.netns import Host
from weavenet.harness.util import wait_until


class MeshView(msgspec.Struct, frozen=True):
    """What one router reports: peer count and its local connections by state."""

    host: str
    peers: int
    established: int
    connections: int

    def __str__(self) -> str:
        return f"{self.host}: {self.peers} peers, {self.established}/{self.connections} established"


def connections(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list(report.get("Router", {}).get("Connections") or [])


def established_addresses(report: dict[str, Any]) -> list[str]:
    """Remote addresses (host part) of this router's established connections."""
    return [
        str(c.get("Address", "")).rsplit(":", 1)[0]
        for c in connections(report)
        if c.get("State") == "established"
    ]


def mesh_view(host: Host) -> MeshView:
    """Peer and connection counts from `weave report` (raises if the router doesn't answer)."""
    report = host.report()
    conns = connections(report)
    peers = report.get("Router", {}).get("Peers") or []
    established = sum(1 for c in conns if c.get("State") == "established")
    return MeshView(host.name, len(peers), established, len(conns))


def _try_view(host: Host) -> MeshView | str:
    try:
        return mesh_view(host)
    except Exception as exc:
        return f"{host.name}: no answer ({type(exc).__name__})"


def safe_view(host: Host) -> str:
    """mesh_view as a line of text, or why the router didn't answer."""
    return str(_try_view(host))


def wait_for_mesh(
    hosts: Sequence[Host],
    peers: int | None = None,
    established: int | None = None,
    timeout: float = 30.0,
    progress: Callable[[list[str]], None] | None = None,
) -> None:
    """Wait until every host sees `peers` peers and `established` established connections.

    Defaults: a full mesh of `hosts` (len(hosts) peers, len(hosts) - 1 connections each).
    `progress` is called with one line per host each time the observed state changes.
    """
    want_peers = len(hosts) if peers is None else peers
    want_est = len(hosts) - 1 if established is None else established
    last: list[str] = []

    def check() -> bool:
        nonlocal last
        views = [_try_view(h) for h in hosts]
        lines = [str(v) for v in views]
        if progress is not None and lines != last:
            progress(lines)
        last = lines
        return all(
            isinstance(v, MeshView) and v.peers == want_peers and v.established == want_est
            for v in views
        )

    wait_until(
        check,
        timeout,
        interval=0.2,
        message=f"mesh of {len(hosts)} hosts did not reach {want_peers} peers / "
        f"{want_est} established connections each",
        describe=lambda: "; ".join(last),
    )
