"""The pure parts of bench/dataplane.py: statistics, round order, overlay names, targets and
the printed table. No I/O here (tests/unit/test_bench_dataplane.py covers it)."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# name: (row label, overlay that `weave status connections` must show; None: no router)
PATHS: dict[str, tuple[str, str | None]] = {
    "underlay": ("raw underlay", None),
    "vxlan": ("kernel VXLAN, hand-made", None),
    "fastdp": ("fastdp", "fastdp"),
    "fsleeve": ("fast sleeve", "fast sleeve"),
    "fsleeve-enc": ("fast sleeve, encrypted", "encrypted fast sleeve"),
    "sleeve": ("sleeve (Weave-compatible)", "sleeve"),
    "sleeve-enc": ("sleeve, encrypted", "encrypted sleeve"),
    "go-sleeve": ("Go weaver sleeve", "sleeve"),
    "go-sleeve-enc": ("Go weaver sleeve, encrypted", "encrypted sleeve"),
}
STREAMS = (1, 4)

_OVERLAY = re.compile(r"\bestablished\s+(?:(un)?(encrypted)\s+)?(fast\s+sleeve|fastdp|sleeve)\b")


# ---- statistics -----------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q % of them at or below."""
    if not values:
        return math.nan
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} outside (0, 100]")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def round_order(paths: Sequence[str], rnd: int, rounds: int) -> list[str]:
    """Round `rnd` (0-based) of `rounds` measures every path once, the list rotated by an
    even share each round, so every path takes early, middle and late places alike."""
    if not paths:
        return []
    shift = (rnd * len(paths) // max(1, rounds)) % len(paths)
    return [*paths[shift:], *paths[:shift]]


def overlays(status_connections: str) -> list[str]:
    """The overlay of every established connection in `weave status connections` text,
    e.g. ["encrypted fast sleeve"] (Go's and our layout: "encrypted   sleeve ...")."""
    found = []
    for m in _OVERLAY.finditer(status_connections):
        name = " ".join(m.group(3).split())
        found.append(f"encrypted {name}" if m.group(2) and not m.group(1) else name)
    return found


# ---- one path's numbers ---------------------------------------------------------------
def summarize(runs: Sequence[Mapping[str, Any]], rtts: Sequence[float]) -> dict[str, Any]:
    """Medians per stream count, ping p50/p99 and router CPU of a path's runs.

    A run is {"streams", "mbps", "gbit", "cpu_s"}; cpu_s is None where no router runs."""
    out: dict[str, Any] = {}
    for streams in STREAMS:
        mine = [r for r in runs if r["streams"] == streams]
        out[f"mbps_{streams}"] = median([r["mbps"] for r in mine])
        cpu = [r["cpu_s"] for r in mine if r["cpu_s"] is not None]
        out[f"cpu_s_{streams}"] = median(cpu) if cpu else None
    timed = [r for r in runs if r["cpu_s"] is not None]
    gbit = sum(r["gbit"] for r in timed)
    out["cpu_s_per_gbit"] = sum(r["cpu_s"] for r in timed) / gbit if timed and gbit else None
    out["ping_p50"] = percentile(rtts, 50)
    out["ping_p99"] = percentile(rtts, 99)
    out["runs"] = len(runs)
    return out


# ---- targets --------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    text: str
    path: str
    metric: str
    op: str  # ">=" or "<="
    limit: float
    base: str | None = None  # a ratio path/base of the same metric; None: absolute value

    def met(self, value: float) -> bool:
        return value >= self.limit if self.op == ">=" else value <= self.limit


TARGETS = (
    Target("fastdp >= 90 % of kernel VXLAN", "fastdp", "mbps_1", ">=", 0.90, "vxlan"),
    Target("fastdp ping p50 <= 1.2 x kernel VXLAN's", "fastdp", "ping_p50", "<=", 1.2, "vxlan"),
    Target("encrypted fast sleeve >= 10 x Go's encrypted sleeve", "fsleeve-enc", "mbps_1",
           ">=", 10.0, "go-sleeve-enc"),
    Target("encrypted fast sleeve >= 3 Gbit/s", "fsleeve-enc", "mbps_1", ">=", 3000.0),
    Target("plain fast sleeve >= 3.5 Gbit/s", "fsleeve", "mbps_1", ">=", 3500.0),
    Target("sleeve >= 2 x Go's sleeve", "sleeve", "mbps_1", ">=", 2.0, "go-sleeve"),
    Target("encrypted sleeve >= 2 x Go's encrypted sleeve", "sleeve-enc", "mbps_1", ">=", 2.0,
           "go-sleeve-enc"),
)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    target: Target
    status: str  # PASS, FAIL, n/a (a path is unavailable) or skip (a path was not asked for)
    value: float | None
    detail: str  # the value (and the 4-stream figure), or why there is none


def _value(t: Target, summary: Mapping[str, Mapping[str, Any]], metric: str) -> float:
    value = float(summary[t.path][metric])
    return value / float(summary[t.base][metric]) if t.base else value


def evaluate(
    t: Target, summary: Mapping[str, Mapping[str, Any]], missing: Mapping[str, str]
) -> Verdict:
    """`summary`: path -> summarize(); `missing`: path -> why it has no numbers."""
    for path in (t.path, t.base):
        if path is not None and path not in summary:
            if path not in missing:
                return Verdict(t, "skip", None, f"{PATHS[path][0]}: not measured (--paths)")
            why = missing[path].split(":", 1)[0]  # "not available", "failed in round 2"
            return Verdict(t, "n/a", None, f"{PATHS[path][0]}: {why} (see its row)")
    value = _value(t, summary, t.metric)
    if math.isnan(value):
        return Verdict(t, "n/a", None, "no samples")
    detail = _shown(t, value)
    if t.metric == "mbps_1":
        detail = f"1 stream {detail} (4 streams {_shown(t, _value(t, summary, 'mbps_4'))})"
    return Verdict(t, "PASS" if t.met(value) else "FAIL", value, detail)


def _shown(t: Target, value: float) -> str:
    if t.base:
        return f"{value:.2f}x"
    if t.metric.startswith("ping"):
        return f"{value:.3f} ms"
    return f"{value:.0f} Mbit/s"


# ---- the table ------------------------------------------------------------------------
_HEAD = (
    f"{'path':<29}{'1 stream':>10}{'4 streams':>11}{'ping p50':>10}{'p99':>8}"
    f"{'CPU s 1/4':>12}{'CPU s/Gbit':>12}{'peak RSS':>10}"
)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, fmt)


def row(path: str, s: Mapping[str, Any] | None, rss_mb: float | None, why: str | None) -> str:
    label = PATHS[path][0]
    if s is None:
        return f"{label:<29}n/a ({why})"
    cpu = "-"
    if s["cpu_s_1"] is not None:
        cpu = f"{_num(s['cpu_s_1'], '.1f')}/{_num(s['cpu_s_4'], '.1f')}"
    return (
        f"{label:<29}{_num(s['mbps_1'], '.0f'):>10}{_num(s['mbps_4'], '.0f'):>11}"
        f"{_num(s['ping_p50'], '.3f'):>10}{_num(s['ping_p99'], '.3f'):>8}{cpu:>12}"
        f"{_num(s['cpu_s_per_gbit'], '.2f'):>12}{_num(rss_mb, '.0f'):>10}"
    )


def table(
    paths: Sequence[str],
    summary: Mapping[str, Mapping[str, Any]],
    rss_mb: Mapping[str, float | None],
    missing: Mapping[str, str],
) -> list[str]:
    """The rows (Mbit/s, ms, CPU-seconds of both routers per run, MB) then the targets."""
    lines = [_HEAD, "-" * len(_HEAD)]
    for path in paths:
        lines.append(row(path, summary.get(path), rss_mb.get(path), missing.get(path)))
    lines.append("")
    for verdict in (evaluate(t, summary, missing) for t in TARGETS):
        status = {"n/a": "n/a ", "skip": "  - "}.get(verdict.status, verdict.status)
        lines.append(f"{status}  {verdict.target.text}: {verdict.detail}")
    return lines


def overall(summary: Mapping[str, Mapping[str, Any]], missing: Mapping[str, str]) -> str:
    """PASS (every target measured was met), FAIL (one missed), INCOMPLETE (none missed,
    but a path a target needs was asked for and is unavailable) or NO TARGET."""
    statuses = {evaluate(t, summary, missing).status for t in TARGETS}
    if statuses == {"skip"}:
        return "NO TARGET"  # --paths left out a path of every target
    if "FAIL" in statuses:
        return "FAIL"
    return "INCOMPLETE" if "n/a" in statuses else "PASS"
