"""What status, report and HTTP show of WeaveDNS, in Go's shapes (prog/weaver/http.go,
nameserver/status.go, nameserver/http.go; weave-surface.md §1.5, §1.6, §2.4)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from weavenet.core.dns.entries import Entry, format_ip
from weavenet.core.peername import format_peer_name


def entries_json(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """GET /name (Accept: application/json): Go's Entry fields, numbers as numbers."""
    return [
        {
            "ContainerID": e.container_id,
            "Origin": e.origin,
            "Addr": e.addr,
            "Hostname": e.hostname,
            "Version": e.version,
            "Tombstone": e.tombstone,
        }
        for e in entries
    ]


def dns_report(
    domain: str, upstream: Sequence[str], address: str, ttl: int, entries: Iterable[Entry]
) -> dict[str, Any]:
    """The "DNS" section of /report (Go nameserver.Status); tombstones included."""
    return {
        "Domain": domain,
        "Upstream": list(upstream),
        "Address": address,
        "TTL": ttl,
        "Entries": [
            {
                "Hostname": e.hostname,
                "Origin": format_peer_name(e.origin),
                "ContainerID": e.container_id,
                "Address": format_ip(e.addr),
                "Version": e.version,
                "Tombstone": e.tombstone,
            }
            for e in entries
        ],
    }


def live_count(entries: Iterable[Entry]) -> int:
    """The "Entries:" line of `weave status` (Go countDNSEntries): live entries only."""
    return sum(1 for e in entries if e.live)


def status_dns_text(domain: str, entries: Iterable[Entry]) -> str:
    """`weave status dns` (Go dnsEntriesTemplate): one line per live entry."""
    suffix = "." + domain
    lines = []
    for e in entries:
        if not e.live:
            continue
        host = e.hostname[: -len(suffix)] if e.hostname.endswith(suffix) else e.hostname
        container = f"{e.container_id[:12]:>12}"
        lines.append(
            f"{host:<12} {format_ip(e.addr):<15} {container} {format_peer_name(e.origin)}\n"
        )
    return "".join(lines)
