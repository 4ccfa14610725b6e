"""Prometheus metrics, compatible with Weave Net 2.8 ``prog/weaver/metrics.go``.

Metric values are read from ``control.report()`` at scrape time. Label names are
in alphabetical order (encryption, state, type) as the Go client prints them, so
``grep '^weave_connections.*encryption="yes",state="established"'`` works.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from weavenet.api.control import RouterControl
from weavenet.api.status_text import count_dns_entries

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_INTEGRAL_VALUE = re.compile(rb"^([^#\n][^\n]* -?\d+)\.0$", re.MULTILINE)


def _gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=sorted(labels) if labels else None)
    family.add_metric([labels[k] for k in sorted(labels)] if labels else [], value)
    return family


def connection_metric(router: dict[str, Any]) -> Metric | None:
    """``weave_connections{encryption,state,type}``: both encryption values per (state, type)."""
    counts: dict[tuple[str, str, str], int] = {}
    for conn in router.get("Connections") or []:
        attrs = conn.get("Attrs") or {}
        kind = str(attrs.get("name") or "unknown")
        state = str(conn.get("State", ""))
        encryption = "yes" if attrs.get("encrypted") else ""
        for enc in ("", "yes"):
            counts.setdefault((enc, state, kind), 0)
        counts[(encryption, state, kind)] += 1
    if not counts:
        return None
    family = GaugeMetricFamily(
        "weave_connections",
        "Number of peer-to-peer connections.",
        labels=["encryption", "state", "type"],
    )
    for key in sorted(counts):
        family.add_metric(list(key), counts[key])
    return family


def _ipam_owners(ipam: dict[str, Any]) -> dict[str, tuple[bool, int]]:
    owners: dict[str, tuple[bool, int]] = {}
    for entry in ipam.get("Entries") or []:
        peer = str(entry.get("Peer"))
        reachable, ips = owners.get(peer, (bool(entry.get("IsKnownPeer")), 0))
        owners[peer] = (reachable, ips + int(entry.get("Size", 0)))
    return owners


def ipam_metrics(ipam: dict[str, Any]) -> list[Metric]:
    """IPAM gauges (only emitted when the IPAM section exists)."""
    owners = _ipam_owners(ipam)
    unreachable = [ips for reachable, ips in owners.values() if not reachable]
    total = int(ipam.get("RangeNumIPs") or 0)
    percentage = sum(unreachable) * 100.0 / total if total else 0.0
    return [
        _gauge(
            "weave_ipam_pending_allocates",
            "Number of pending allocates.",
            len(ipam.get("PendingAllocates") or []),
        ),
        _gauge(
            "weave_ipam_pending_claims",
            "Number of pending claims.",
            len(ipam.get("PendingClaims") or []),
        ),
        _gauge("weave_ipam_unreachable_count", "Number of unreachable peers.", len(unreachable)),
        _gauge(
            "weave_ipam_unreachable_percentage",
            "Percentage of IP addresses owned  by unreachable peers.",
            percentage,
        ),
        _gauge(
            "weave_ips",
            "Number of IP addresses.",
            int(ipam.get("ActiveIPs") or 0),
            {"state": "local-used"},
        ),
        _gauge("weave_max_ips", "Size of IP address space used by allocator.", total),
    ]


def _flow_count(router: dict[str, Any]) -> int | None:
    diagnostics = router.get("OverlayDiagnostics") or {}
    fastdp = diagnostics.get("fastdp") if isinstance(diagnostics, dict) else None
    if not isinstance(fastdp, dict):
        return None
    return len(fastdp.get("Flows") or [])


def weave_metrics(report: dict[str, Any]) -> list[Metric]:
    """All ``weave_*`` families for one report, sorted by name like the Go registry."""
    router = report.get("Router") or {}
    families: list[Metric] = [
        CounterMetricFamily(
            "weave_connection_terminations",
            "Number of peer-to-peer connections terminated.",
            value=int(router.get("TerminationCount") or 0),
        )
    ]
    connections = connection_metric(router)
    if connections is not None:
        families.append(connections)
    dns = report.get("DNS")
    if dns:
        entries = count_dns_entries(dns.get("Entries"), origin=router.get("Name"))
        families.append(_gauge("weave_dns_entries", "Number of DNS entries.", entries))
    flows = _flow_count(router)
    if flows is not None:
        families.append(_gauge("weave_flows", "Number of FastDP flows.", flows))
    ipam = report.get("IPAM")
    if ipam:
        families.extend(ipam_metrics(ipam))
    stats = router.get("DatapathStats")
    if stats:
        families.extend(datapath_metrics(stats))
    sent = router.get("SentBytes")
    if sent:
        families.extend(sent_metrics(sent))
    return sorted(families, key=lambda f: f.name)


_ACTIONS = ("forwarded", "flooded", "relayed", "injected", "dropped")


def datapath_metrics(stats: dict[str, int]) -> list[Metric]:
    """The userspace datapath's counters (ours; Weave has no equivalent)."""
    frames = CounterMetricFamily(
        "weavenet_datapath_frames", "Frames handled by the datapath.", labels=["action"]
    )
    size = CounterMetricFamily(
        "weavenet_datapath_bytes", "Bytes of frames handled by the datapath.", labels=["action"]
    )
    for action in _ACTIONS:
        frames.add_metric([action], stats.get(f"{action}_frames", 0))
        size.add_metric([action], stats.get(f"{action}_bytes", 0))
    packets = CounterMetricFamily(
        "weavenet_sleeve_packets", "Sleeve UDP packets.", labels=["direction"]
    )
    packets.add_metric(["in"], stats.get("packets_in", 0))
    packets.add_metric(["out"], stats.get("packets_out", 0))
    return [
        frames,
        size,
        packets,
        CounterMetricFamily(
            "weavenet_sleeve_dropped_packets",
            "Sleeve packets dropped: undecodable, unknown sender or failed decryption.",
            value=stats.get("dropped_packets", 0),
        ),
        CounterMetricFamily(
            "weavenet_sleeve_replayed_packets",
            "Encrypted sleeve packets rejected as replays.",
            value=stats.get("replayed_packets", 0),
        ),
    ]


def sent_metrics(sent: dict[str, int]) -> list[Metric]:
    """Bytes the router sent: mesh TCP (gossip, handshakes, keepalives) and per overlay
    (fastdp heartbeats; sleeve heartbeats and frames), for bench/scale.py."""
    mesh = CounterMetricFamily(
        "weavenet_mesh_sent_bytes",
        "Bytes sent on mesh TCP connections (gossip, handshakes, keepalives).",
        value=sent.get("mesh", 0),
    )
    overlay = CounterMetricFamily(
        "weavenet_overlay_sent_bytes", "UDP bytes sent by each overlay.", labels=["overlay"]
    )
    for name in sorted(k for k in sent if k != "mesh"):
        overlay.add_metric([name], sent[name])
    return [mesh, overlay]


class LoopStepStats(Protocol):
    """What the event-loop monitor measured (``weavenet.io.loop_monitor.LoopStats``)."""

    @property
    def total_seconds(self) -> float: ...
    @property
    def max_step(self) -> float: ...
    @property
    def max_step_cpu(self) -> float: ...
    @property
    def lag(self) -> float: ...
    @property
    def max_lag(self) -> float: ...
    @property
    def ready_cpu(self) -> float | None: ...

    def cumulative(self) -> list[tuple[str, int]]: ...


def loop_metrics(stats: LoopStepStats) -> list[Metric]:
    """The router's own event loop: step durations and timer lateness, and the CPU it had
    used when it was ready (ours; not in Weave)."""
    steps = HistogramMetricFamily(
        "weavenet_event_loop_step_seconds",
        "Time the event loop spent in one step (a callback or a task step).",
        buckets=stats.cumulative(),
        sum_value=stats.total_seconds,
    )
    ready = []
    if stats.ready_cpu is not None:
        ready.append(
            _gauge(
                "weavenet_ready_cpu_seconds",
                "CPU time (user and system, all threads) the router had used when it was"
                " ready to serve (when `weave launch` returns).",
                stats.ready_cpu,
            )
        )
    return [
        *ready,
        steps,
        _gauge(
            "weavenet_event_loop_step_max_seconds",
            "Longest single event-loop step since the router started.",
            stats.max_step,
        ),
        _gauge(
            "weavenet_event_loop_step_cpu_max_seconds",
            "Most CPU time one event-loop step used since the router started (its wall"
            " time also counts time the kernel gave to other processes).",
            stats.max_step_cpu,
        ),
        _gauge(
            "weavenet_event_loop_lag_seconds",
            "How late the latest periodic probe timer fired.",
            stats.lag,
        ),
        _gauge(
            "weavenet_event_loop_lag_max_seconds",
            "Latest firing of the periodic probe timer since the router started.",
            stats.max_lag,
        ),
    ]


class LoopStatsSource(Protocol):
    def stats(self) -> LoopStepStats: ...


class LoopCollector(Collector):
    """Reads an event-loop monitor's snapshot (``stats()``) on every scrape."""

    def __init__(self, monitor: LoopStatsSource) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        yield from loop_metrics(self.monitor.stats())


class WeaveCollector(Collector):
    """Reads ``control.report()`` on every scrape.

    Not ``status_report()``, as /status does: these families need what only the full
    report has (our connections' overlay attributes, the IPAM ring's owners, pending
    claims, datapath and byte counters, DNS entries by origin); they never walk the
    peers' connection lists, the O(N^2) part of /status that its report avoids."""

    def __init__(self, control: RouterControl) -> None:
        self.control = control

    def collect(self) -> Iterator[Metric]:
        yield from weave_metrics(self.control.report(routes=False))


def make_registry(control: RouterControl) -> CollectorRegistry:
    """A registry with process_* / python_info metrics and the weave collector."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(WeaveCollector(control))
    return registry


def render_metrics(
    control: RouterControl, registry: CollectorRegistry | None = None
) -> tuple[bytes, str]:
    """Return (body, content type) for ``GET /metrics``."""
    reg = registry if registry is not None else make_registry(control)
    # Go prints whole-number samples without a fractional part ("1", not "1.0").
    body = _INTEGRAL_VALUE.sub(rb"\1", generate_latest(reg))
    return body, CONTENT_TYPE
