"""Shared steps of the interop tests: peer tables from both implementations, transfers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from weavenet.harness import Host, wait_until
from weavenet.harness.goweaver import GoWeaver, HttpApi

OUR_HTTP = "127.0.0.1:6784"
Reporter = Callable[[], dict[str, Any]]


def our_api(host: Host) -> HttpApi:
    """Our router's HTTP API on `host` (the address `weave launch` gives it by default)."""
    return HttpApi(host, OUR_HTTP)


def reporter(router: Host | GoWeaver) -> Reporter:
    """GET /report (JSON) of our router on a host, or of a Go weaver."""
    if isinstance(router, GoWeaver):
        return router.report
    return our_api(router).report


def peer_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """/report Router.Peers in a canonical order (by name; each peer's connections by name)."""
    peers = report.get("Router", {}).get("Peers") or []
    table = []
    for peer in sorted(peers, key=lambda p: str(p["Name"])):
        conns = sorted(peer.get("Connections") or [], key=lambda c: str(c["Name"]))
        table.append({**peer, "Connections": conns})
    return table


def established(report: dict[str, Any]) -> int:
    conns = report.get("Router", {}).get("Connections") or []
    return sum(1 for c in conns if c.get("State") == "established")


def wait_mesh(
    routers: Sequence[Host | GoWeaver], peers: int, est: Sequence[int], timeout: float = 40.0
) -> None:
    """Wait until every router knows `peers` peers and has est[i] established connections."""
    reports = [reporter(r) for r in routers]
    seen: list[str] = []

    def check() -> bool:
        seen.clear()
        ok = True
        for router, get, want in zip(routers, reports, est, strict=True):
            rep = get()
            n_peers, n_est = len(peer_table(rep)), established(rep)
            seen.append(f"{router}: {n_peers} peers, {n_est} established")
            ok = ok and n_peers == peers and n_est == want
        return ok

    wait_until(check, timeout, interval=0.3, message="mixed mesh", describe=lambda: seen)


def wait_tables_agree(routers: Sequence[Host | GoWeaver], timeout: float = 30.0) -> list[Any]:
    """Poll until every router's /report peer table is identical; return that table."""
    reports = [reporter(r) for r in routers]
    tables: list[Any] = []

    def agree() -> bool:
        tables[:] = [peer_table(get()) for get in reports]
        return all(t == tables[0] for t in tables)

    wait_until(agree, timeout, interval=0.3, message="peer tables agree", describe=lambda: tables)
    return tables[0]


def our_connections(host: Host) -> str:
    return host.weave("status", "connections").stdout


def our_sleeve_mtu(host: Host) -> int | None:
    """The sleeve MTU our router reports once PMTU discovery settled (None before)."""
    text = our_connections(host)
    m = re.search(r"established\s+(?:encrypted\s+)?sleeve.*mtu=(\d+)", text)
    return int(m.group(1)) if m else None


def go_sleeve_mtu(go: GoWeaver) -> int | None:
    for conn in go.report().get("Router", {}).get("Connections") or []:
        attrs = conn.get("Attrs") or {}
        if conn.get("State") == "established" and attrs.get("name") == "sleeve":
            return int(attrs["mtu"]) if "mtu" in attrs else None
    return None
