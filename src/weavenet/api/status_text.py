"""Text views of the router report: ``weave status`` and its sub-commands.

Byte-compatible with the templates in Weave Net 2.8 ``prog/weaver/http.go``.
The views take the ``/report`` document (see :mod:`weavenet.api.control`);
``render_status_report`` takes the smaller /status report (``RouterControl.status_report``:
counts where the template only counts /report's lists), which ``status_summary`` makes
from a full report, so ``render_status(report)`` prints the same for either source.

One addition: when our IPAM report says what the allocator is waiting for (its
``Awaiting`` field, e.g. the peers a consensus still needs), ``weave status`` shows it
on an ``Awaiting:`` line under ``Status:``, and ``weave status ipam`` shows both before a
ring exists, where Go prints nothing. A ready allocator's texts are exactly Go's.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from weavenet.api.gofmt import go_str
from weavenet.core.mesh.report import IDENTITY_FIELDS

ALL_CONNECTION_STATES = ("established", "pending", "retrying", "failed", "connecting")
LABEL_WIDTH = 15


def _line(label: str, value: Any) -> str:
    return f"{label:>{LABEL_WIDTH}}: {value}\n"


def _print_state(enabled: Any) -> str:
    return "enabled" if enabled else "disabled"


def _print_list(items: Iterable[Any] | None) -> str:
    values = [go_str(x, top=False) for x in items or ()]
    return ", ".join(values) if values else "none"


def _print_counts(counts: dict[str, int], keys: Iterable[str]) -> str:
    """Go ranges over a map of the states that occur: a state counted 0 is not shown."""
    return ", ".join(f"{counts[k]} {k}" for k in keys if counts.get(k))


def _go_time(stamp: Any) -> str:
    """RFC 3339 (as Go marshals time.Time) to Go's ``2006/01/02 15:04:05``."""
    text = str(stamp or "0001-01-01T00:00:00Z")
    return text[:10].replace("-", "/") + " " + text[11:19]


def version_check_text(check: dict[str, Any] | None) -> str:
    """Go ``VersionCheck.String``."""
    if not check or not check.get("Enabled"):
        return "version check update disabled"
    next_check = _go_time(check.get("NextCheckAt"))
    if not check.get("Success"):
        return f"failed to check latest version - see logs; next check at {next_check}"
    if check.get("NewVersion"):
        return f"version {check['NewVersion']} available - please upgrade!"
    return f"up to date; next check at {next_check}"


def _connection_counts(router: dict[str, Any]) -> str:
    counts = router.get("ConnectionCounts") or {}
    total = sum(counts.values())
    summary = _print_counts(counts, ALL_CONNECTION_STATES)
    return f"{total} ({summary})" if summary else str(total)


def _peer_counts(router: dict[str, Any]) -> str:
    peers = router.get("PeerCount", 0)
    summary = _print_counts(router.get("PeerConnectionCounts") or {}, ("established", "pending"))
    return f"{peers} (with {summary} connections)" if summary else str(peers)


def _router_section(router: dict[str, Any]) -> str:
    lo, hi = router.get("ProtocolMinVersion"), router.get("ProtocolMaxVersion")
    versions = f"{hi}" if lo == hi else f"{lo}..{hi}"
    return (
        "\n"
        + _line("Service", "router")
        + _line("Protocol", f"{router.get('Protocol', 'weave')} {versions}")
        + _line("Name", f"{router.get('Name')}({router.get('NickName')})")
        + _line("Encryption", _print_state(router.get("Encryption")))
        + _line("PeerDiscovery", _print_state(router.get("PeerDiscovery")))
        + _line("Targets", router.get("TargetCount", 0))
        + _line("Connections", _connection_counts(router))
        + _line("Peers", _peer_counts(router))
        + _line("TrustedSubnets", _print_list(router.get("TrustedSubnets")))
    )


def ipam_status(ipam: dict[str, Any]) -> str:
    """The IPAM ``Status:`` line; an explicit ``Status`` field wins."""
    if ipam.get("Status"):
        return str(ipam["Status"])
    entries = ipam.get("Entries") or []
    paxos = ipam.get("Paxos")
    if entries:
        if not any(e.get("Size", 0) > 0 and e.get("IsKnownPeer") for e in entries):
            return "all IP ranges owned by unreachable peers - use 'rmpeer' if they are dead"
        if ipam.get("PendingAllocates"):
            return "waiting for IP(s) to become available"
        return "ready"
    if paxos:
        if paxos.get("Elector"):
            quorum, known = paxos.get("Quorum"), paxos.get("KnownNodes")
            return f"awaiting consensus (quorum: {quorum}, known: {go_str(known)})"
        return "priming"
    return "idle"


def _awaiting(ipam: dict[str, Any]) -> str:
    """Our ``Awaiting`` line (what the allocator waits for), absent when nothing is."""
    awaiting = ipam.get("Awaiting")
    return _line("Awaiting", awaiting) if awaiting else ""


def _ipam_section(ipam: dict[str, Any]) -> str:
    return (
        "\n"
        + _line("Service", "ipam")
        + _line("Status", ipam.get("Status"))
        + _awaiting(ipam)
        + _line("Range", ipam.get("Range"))
        + _line("DefaultSubnet", ipam.get("DefaultSubnet"))
    )


def count_dns_entries(entries: Iterable[dict[str, Any]] | None, origin: str | None = None) -> int:
    """Non-tombstoned entries (optionally only those originated by ``origin``)."""
    return sum(
        1
        for e in entries or ()
        if not e.get("Tombstone") and (origin is None or e.get("Origin") == origin)
    )


def _dns_section(dns: dict[str, Any]) -> str:
    return (
        "\n"
        + _line("Service", "dns")
        + _line("Domain", dns.get("Domain"))
        + _line("Upstream", _print_list(dns.get("Upstream")))
        + _line("TTL", dns.get("TTL"))
        + _line("Entries", dns.get("EntryCount", 0))
    )


def _extra_sections(report: dict[str, Any]) -> str:
    out = ""
    proxy = report.get("Proxy")
    if proxy:
        out += "\n" + _line("Service", "proxy")
        out += _line("Address", _print_list(proxy.get("Addresses")))
    plugin = report.get("Plugin")
    if plugin:
        if (plugin.get("Config") or {}).get("EnableV2"):
            out += "\n" + _line("Service", "plugin (v2)")
        else:
            out += "\n" + _line("Service", "plugin (legacy)")
            out += _line("DriverName", plugin.get("DriverName"))
    return out


def render_status_report(status: dict[str, Any]) -> str:
    """The ``GET /status`` body (``weave status``) from the /status report."""
    version = _line(
        "Version", f"{status.get('Version')} ({version_check_text(status.get('VersionCheck'))})"
    )
    out = version + _router_section(status.get("Router") or {})
    if status.get("IPAM"):
        out += _ipam_section(status["IPAM"])
    if status.get("DNS"):
        out += _dns_section(status["DNS"])
    return out + _extra_sections(status)


def render_status(report: dict[str, Any]) -> str:
    """The ``GET /status`` body (``weave status``) from a full /report."""
    return render_status_report(status_summary(report))


# -- the /status report of a full /report -------------------------------------

# the fields of Router that /status prints as they are (the rest it counts)
_ROUTER_FIELDS = (*IDENTITY_FIELDS, "TrustedSubnets")


def _tally(states: Iterable[Any]) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return counts


def _router_summary(router: dict[str, Any]) -> dict[str, Any]:
    peers = router.get("Peers") or []
    peer_states = (
        "established" if conn.get("Established") else "pending"
        for peer in peers
        for conn in peer.get("Connections") or []
    )
    return {
        **{key: router[key] for key in _ROUTER_FIELDS if key in router},
        "TargetCount": len(router.get("Targets") or []),
        "ConnectionCounts": _tally(c.get("State", "") for c in router.get("Connections") or []),
        "PeerCount": len(peers),
        "PeerConnectionCounts": _tally(peer_states),
    }


def status_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The /status report (shape: ``RouterControl.status_report``) of a full /report."""
    summary: dict[str, Any] = {
        key: report[key] for key in ("Ready", "Version", "VersionCheck") if key in report
    }
    summary["Router"] = _router_summary(report.get("Router") or {})
    ipam = report.get("IPAM")
    if ipam:
        summary["IPAM"] = {
            "Status": ipam_status(ipam),
            "Awaiting": ipam.get("Awaiting"),
            "Range": ipam.get("Range"),
            "DefaultSubnet": ipam.get("DefaultSubnet"),
        }
    dns = report.get("DNS")
    if dns:
        summary["DNS"] = {
            "Domain": dns.get("Domain"),
            "Upstream": dns.get("Upstream"),
            "TTL": dns.get("TTL"),
            "EntryCount": count_dns_entries(dns.get("Entries")),
        }
    summary |= {key: report[key] for key in ("Proxy", "Plugin") if report.get(key)}
    return summary


def render_targets(report: dict[str, Any]) -> str:
    """``weave status targets``: one target per line."""
    return "".join(
        f"{go_str(t, top=False)}\n" for t in (report.get("Router") or {}).get("Targets") or []
    )


def _direction(conn: dict[str, Any]) -> str:
    return "->" if conn.get("Outbound") else "<-"


def _attrs(attrs: dict[str, Any] | None) -> str:
    """Go ranges over the map in key order and prints ``key=value`` with no separator."""
    items = sorted((attrs or {}).items())
    return "".join(f"{k}={go_str(v, top=False)}" for k, v in items if k != "name")


def render_connections(report: dict[str, Any]) -> str:
    """``weave status connections``."""
    out = []
    for conn in (report.get("Router") or {}).get("Connections") or []:
        out.append(
            f"{_direction(conn)} {conn.get('Address', ''):<21} {conn.get('State', ''):<11} "
            f"{conn.get('Info', '')} {_attrs(conn.get('Attrs'))}\n"
        )
    return "".join(out)


def render_peers(report: dict[str, Any]) -> str:
    """``weave status peers``."""
    out = []
    for peer in (report.get("Router") or {}).get("Peers") or []:
        out.append(f"{peer.get('Name')}({peer.get('NickName')})\n")
        for conn in peer.get("Connections") or []:
            name = f"{conn.get('Name')}({conn.get('NickName')})"
            state = "established" if conn.get("Established") else "pending"
            out.append(f"   {_direction(conn)} {conn.get('Address', ''):<21} {name:<37} {state}\n")
    return "".join(out)


def render_dns(report: dict[str, Any]) -> str:
    """``weave status dns``: live entries, hostname without the domain."""
    dns = report.get("DNS") or {}
    suffix = "." + str(dns.get("Domain", ""))
    out = []
    for entry in dns.get("Entries") or []:
        if entry.get("Tombstone"):
            continue
        host = str(entry.get("Hostname", ""))
        host = host[: -len(suffix)] if host.endswith(suffix) else host
        cid = str(entry.get("ContainerID", ""))
        out.append(
            f"{host:<12} {entry.get('Address', ''):<15} {cid:>12.12} {entry.get('Origin')}\n"
        )
    return "".join(out)


def _float32(value: float) -> float:
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


def _ipam_owners(entries: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    owners: dict[str, dict[str, Any]] = {}
    for entry in entries:
        peer = str(entry.get("Peer"))
        stats = owners.setdefault(
            peer, {"nick": entry.get("Nickname"), "reachable": entry.get("IsKnownPeer"), "ips": 0}
        )
        stats["ips"] += int(entry.get("Size", 0))
    return owners


def render_ipam(report: dict[str, Any]) -> str:
    """``weave status ipam``: space owned per peer, ours first (Go ``printIPAMRanges``).

    Before a ring exists Go prints nothing; a report of ours (it has ``Status``) shows the
    status and what is awaited instead, so that a blocked allocation explains itself."""
    ipam = report.get("IPAM") or {}
    ours = (report.get("Router") or {}).get("Name")
    total = int(ipam.get("RangeNumIPs") or 0)
    owners = _ipam_owners(ipam.get("Entries") or [])
    if not owners and "Status" in ipam:
        return _line("Status", ipam_status(ipam)) + _awaiting(ipam)
    order = [ours] if ours in owners else []
    order += [peer for peer in owners if peer != ours]
    out = []
    for peer in order:
        stats = owners[peer]
        if peer == ours:
            info = f"({ipam.get('ActiveIPs', 0)} active)"
        else:
            info = "" if stats["reachable"] else "- unreachable!"
        share = _float32(stats["ips"] * 100.0 / total) if total else float("nan")
        name = f"{peer}({stats['nick']})"
        out.append(f"{name:<37} {stats['ips']:>8} IPs ({share:04.1f}% of total) {info}\n")
    return "".join(out)
