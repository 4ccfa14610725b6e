"""Results of bench/mesh.py: summary statistics, targets, the printed table."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path
from typing import Any

TARGET_CONVERGENCE_S = 10.0
TARGET_RSS_MB = 60.0
TARGET_CPU_PCT = 1.0
GO_RSS_MB = 57.0  # the Go weaver 2.8 router, for reference

ROWS = [  # label, per-router key, target text, key in "pass"
    ("RSS at end (MB)", "rss_mb", f"<= {TARGET_RSS_MB:g} (Go {GO_RSS_MB:g})", "rss_mb"),
    ("peak RSS (MB)", "rss_peak_mb", "", None),
    ("RSS after start-up (MB)", "rss_start_mb", "", None),
    ("idle CPU (%)", "idle_cpu_pct", f"< {TARGET_CPU_PCT:g}", "idle_cpu_pct"),
    ("ready after launch (s)", "ready_s", "", None),
    ("converged after /connect (s)", "converged_s", "", None),
    ("CPU during convergence (s)", "converge_cpu_s", "", None),
    ("slowest /status reply (s)", "status_max_s", "", None),
    ("/status polls to converge", "polls", "", None),
]


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def build_result(
    params: dict[str, Any], rows: list[dict[str, Any]], times: dict[str, float]
) -> dict[str, Any]:
    """``rows``: one dict per router with (at least) every key named in ROWS."""
    summary = {key: spread([row[key] for row in rows]) for _, key, _, _ in ROWS}
    checks = {
        "convergence_s": times["convergence_s"] < TARGET_CONVERGENCE_S,
        "rss_mb": summary["rss_mb"]["max"] <= TARGET_RSS_MB,
        "idle_cpu_pct": summary["idle_cpu_pct"]["max"] < TARGET_CPU_PCT,
    }
    targets = {
        "convergence_s": TARGET_CONVERGENCE_S,
        "rss_mb": TARGET_RSS_MB,
        "idle_cpu_pct": TARGET_CPU_PCT,
        "go_rss_mb": GO_RSS_MB,
    }
    return {
        **params,
        "machine": machine(),
        **times,
        "summary": summary,
        "targets": targets,
        "pass": checks,
        "per_router": rows,
    }


def _mark(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def print_result(result: dict[str, Any]) -> None:
    m, s, ok = result["machine"], result["summary"], result["pass"]
    enc = "encrypted" if result["encrypted"] else "unencrypted"
    print(f"\nMesh control plane: {result['routers']} routers, {enc}")
    print(f"machine: {m['cpus']} vCPU {m['cpu_model']}, kernel {m['kernel']}, Python {m['python']}")
    print(f"start-up (all answering /status):  {result['startup_s']:.2f} s")
    print(
        f"convergence (full mesh):           {result['convergence_s']:.2f} s"
        f"   target < {TARGET_CONVERGENCE_S:g} s  {_mark(ok['convergence_s'])}"
    )
    print(f"idle window:                       {result['idle_s']:g} s")
    print(f"\n{'per router':<30}{'min':>9}{'median':>9}{'max':>9}   target")
    for label, key, target, check in ROWS:
        v = s[key]
        mark = _mark(ok[check]) if check else ""
        print(f"{label:<30}{v['min']:>9.2f}{v['median']:>9.2f}{v['max']:>9.2f}   {target} {mark}")
    print(f"\noverall: {_mark(all(ok.values()))}")
