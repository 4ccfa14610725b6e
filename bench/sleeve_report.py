"""Results of bench/sleeve.py: medians, targets, the printed table."""

from __future__ import annotations

import statistics
from typing import Any

from mesh_report import machine

PATHS = {  # name: what is measured
    "underlay": "h1 -> h2 over the raw underlay (no router)",
    "plain": "container -> container across 2 hosts, plain sleeve",
    "encrypted": "container -> container across 2 hosts, encrypted sleeve (--password)",
}
TARGET_MBPS = {"plain": 800.0, "encrypted": 350.0}  # single TCP stream
GO_MBPS = {"plain": 440.0, "encrypted": 300.0}  # Go weaver 2.8.1 sleeve, same machine kind


class BenchError(RuntimeError):
    """The run itself failed (not merely missed a target)."""


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(path: dict[str, Any]) -> dict[str, Any]:
    runs = path["runs"]
    cpu_keys = sorted({k for run in runs for k in run if k.startswith("cpu_pct_")})
    return {
        "mbps": _median([r["mbps"] for r in runs]),
        "mbps_runs": [r["mbps"] for r in runs],
        "retransmits": _median([r["retransmits"] for r in runs]),
        "ping_ms": _median(path["ping_ms"]),
        **{key: _median([r[key] for r in runs]) for key in cpu_keys},
    }


def build_result(args: dict[str, Any], measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    summary = {name: summarize(path) for name, path in measured.items()}
    checks = {
        name: summary[name]["mbps"] >= target
        for name, target in TARGET_MBPS.items()
        if name in summary
    }
    params = {key: args[key] for key in ("runs", "seconds", "warmup", "pings", "paths")}
    return {
        **params,
        "machine": machine(),
        "summary": summary,
        "targets_mbps": TARGET_MBPS,
        "go_weaver_mbps": GO_MBPS,
        "pass": checks,
        "raw": measured,
    }


def _mark(result: dict[str, Any], name: str) -> str:
    if name not in result["pass"]:
        return ""
    return "PASS" if result["pass"][name] else "FAIL"


def print_result(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(
        f"\nData plane: sleeve, 1 TCP stream (iperf3), median of {result['runs']} x "
        f"{result['seconds']:g} s; ping median of {result['pings']} (idle)"
    )
    print(f"machine: {m['cpus']} vCPU {m['cpu_model']}, kernel {m['kernel']}, Python {m['python']}")
    head = f"{'path':<11}{'Mbit/s':>9}{'runs':>20}{'retr':>7}{'ping ms':>9}"
    print(f"\n{head}{'CPU h1/h2 %':>14}   target (Go 2.8)")
    for name, s in result["summary"].items():
        runs = "/".join(f"{v:.0f}" for v in s["mbps_runs"])
        cpu = ""
        if "cpu_pct_h1" in s:
            cpu = f"{s['cpu_pct_h1']:.0f}/{s['cpu_pct_h2']:.0f}"
        target = ""
        if name in TARGET_MBPS:
            target = f">= {TARGET_MBPS[name]:g} ({GO_MBPS[name]:g})  {_mark(result, name)}"
        print(
            f"{name:<11}{s['mbps']:>9.0f}{runs:>20}{s['retransmits']:>7.0f}"
            f"{s['ping_ms']:>9.3f}{cpu:>14}   {target}"
        )
    if result["pass"]:
        overall = "PASS" if all(result["pass"].values()) else "FAIL"
        print(f"\noverall: {overall}")
