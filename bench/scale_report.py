"""Results of bench/scale.py: per-run summaries, the targets of issue 10, the table."""

from __future__ import annotations

import statistics
from typing import Any

CONVERGE_50_S, CONVERGE_100_S = 15.0, 45.0
CPU_50_S = 0.5
RATIO_50_20, RATIO_100_50 = 2.5, 2.2
STATUS_P99_50_S = 0.2

ROWS = [  # label, key in a run's summary, format
    ("converged after launch (s)", "convergence_s", "{:.1f}"),
    ("converged after the last router answered /status (s)", "after_ready_s", "{:.1f}"),
    ("half of the routers converged after launch (s)", "converged_half_s", "{:.1f}"),
    ("90% of the routers converged after launch (s)", "converged_90_s", "{:.1f}"),
    ("start-up alone: launch -> /status (s)", "alone_launch_s", "{:.2f}"),
    ("start-up alone: router CPU (s)", "alone_ready_cpu_s", "{:.2f}"),
    ("start-up alone: `weave` CLI CPU (s)", "alone_cli_cpu_s", "{:.2f}"),
    ("start-up, N-1 at once: launch -> /status, median / max (s)", "launch_s", "{}"),
    ("`weave launch` gave up (30 s), routers", "launch_failed", "{}"),
    ("last router answered /status (s)", "all_ready_s", "{:.1f}"),
    ("router CPU when ready, median (s)", "ready_cpu_s_median", "{:.2f}"),
    ("`weave` CLI CPU, N-1 at once, median (s)", "cli_cpu_s_median", "{:.2f}"),
    ("router CPU launch -> converged, mean / max (s)", "total_cpu_s", "{}"),
    ("router CPU ready -> converged, mean (s)", "converge_cpu_s_mean", "{:.2f}"),
    ("peak RSS, median / max (MB)", "rss_peak_mb", "{}"),
    ("mesh TCP sent per router, mean (KB)", "mesh_sent_kb_mean", "{:.0f}"),
    ("overlay sent per router, mean (KB)", "overlay_sent_kb_mean", "{:.0f}"),
    ("/status latency p50 / p99 / max (ms), kernel-stamped", "status_ms", "{}"),
    ("/status p99 while routers start / after the last answered (ms)", "status_phases", "{}"),
    ("/status replies sampled, kernel-stamped", "status_samples", "{}"),
    ("/status as the probe thread saw it, p50 / p99 / max (ms)", "thread_status_ms", "{}"),
    ("DNS latency p50 / p99 / max (ms), unanswered", "dns_ms", "{}"),
    ("'Multiple connections' log lines", "multiple_connections", "{}"),
    ("longest event-loop step (ms, /metrics)", "loop_max_ms", "{}"),
    ("most CPU in one event-loop step (ms, /metrics)", "loop_cpu_max_ms", "{}"),
]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _phases(rows: list[dict[str, Any]], all_ready: float) -> str:
    """The p99 of the replies asked before the last router answered (the launch: imports
    keep both cores busy) and after it (the mesh forming), with their counts."""
    pairs = [p for row in rows for p in zip(row["asked_at"], row["latencies"], strict=True)]
    parts = []
    for phase in ([t for a, t in pairs if a < all_ready], [t for a, t in pairs if a >= all_ready]):
        parts.append(f"{1e3 * _pct(phase, 0.99):.0f} ({len(phase)})" if phase else "-")
    return " / ".join(parts)


def _dns(rows: list[dict[str, Any]]) -> str:
    """The DNS probes' latencies (one query after each /status reply), and how many got
    no answer within 5 s."""
    answered = [t for row in rows for t in row.get("dns", []) if t is not None]
    lost = sum(t is None for row in rows for t in row.get("dns", []))
    if not answered:
        return f"- ({lost})"
    return f"{_ms3(answered)}, {lost}"


def _ms3(values: list[float]) -> str:
    """p50 / p99 / max in ms."""
    if not values:
        return "-"
    return " / ".join(
        f"{1e3 * q:.0f}" for q in (_pct(values, 0.5), _pct(values, 0.99), max(values))
    )


def summarize(kind: str, n: int, convergence: float, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`rows`: one dict per router, router 0 (launched alone) first."""
    alone, rest = rows[0], rows[1:]
    lat = [x for row in rows for x in row["latencies"]]
    total = [row["total_cpu_s"] for row in rows]
    launch = [row["launch_s"] for row in rest]
    rss = [row["rss_peak_mb"] for row in rows]
    converged = [row["converged_s"] for row in rows if row.get("converged_s") is not None]
    loops = [row.get("loop", {}) for row in rows]
    loop = [v for m in loops for k, v in m.items() if "max" in k and "cpu" not in k]
    loop_cpu = [v for m in loops for k, v in m.items() if "cpu_max" in k]
    out: dict[str, Any] = {
        "kind": kind,
        "n": n,
        "convergence_s": convergence,
        "alone_launch_s": alone["launch_s"],
        "alone_ready_cpu_s": alone["ready_cpu_s"],
        "alone_cli_cpu_s": alone.get("cli_cpu_s"),
        "launch_s": f"{statistics.median(launch):.2f} / {max(launch):.2f}",
        "launch_failed": sum(bool(row.get("launch_failed")) for row in rest),
        "all_ready_s": max(row.get("ready_s", 0.0) for row in rest),
        "after_ready_s": convergence - max(row.get("ready_s", 0.0) for row in rest),
        "converged_half_s": _pct(converged, 0.5) if converged else None,
        "converged_90_s": _pct(converged, 0.9) if converged else None,
        "ready_cpu_s_median": statistics.median(row["ready_cpu_s"] for row in rows),
        "total_cpu_s_mean": statistics.mean(total),
        "total_cpu_s": f"{statistics.mean(total):.2f} / {max(total):.2f}",
        "converge_cpu_s_mean": statistics.mean(
            row["total_cpu_s"] - row["ready_cpu_s"] for row in rows
        ),
        "rss_peak_mb": f"{statistics.median(rss):.0f} / {max(rss):.0f}",
        "status_phases": _phases(rows, max(row.get("ready_s", 0.0) for row in rest)),
        "dns_ms": _dns(rows),
        "status_p99_s": _pct(lat, 0.99) if lat else None,
        "status_ms": _ms3(lat),
        "status_latencies_s": lat,  # for pooling runs (--json)
        "thread_status_ms": _ms3([x for row in rows for x in row.get("thread_latencies", [])]),
        "status_samples": f"{len(lat)}, {sum(row.get('stamped', 0) for row in rows)}",
        "multiple_connections": sum(row["multiple_connections"] for row in rows),
        "loop_max_ms": f"{1e3 * max(loop):.0f}" if loop else "-",
        "loop_cpu_max_ms": f"{1e3 * max(loop_cpu):.0f}" if loop_cpu else "-",
    }
    cli = [row["cli_cpu_s"] for row in rest if "cli_cpu_s" in row]  # the router is forked
    out["cli_cpu_s_median"] = statistics.median(cli) if cli else None  # from the CLI: count both
    for key in ("mesh_sent_kb", "overlay_sent_kb"):
        values = [row[key] for row in rows if key in row]
        out[f"{key}_mean"] = statistics.mean(values) if values else None
    return out


def targets(results: list[dict[str, Any]]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, pass) for issue 10's acceptance items 1-3 (None: not run)."""
    ours = {r["n"]: r for r in results if r["kind"] == "weavenet" and "failed" not in r}
    failed = {r["n"] for r in results if r["kind"] == "weavenet" and "failed" in r}
    checks: list[tuple[str, str, bool | None]] = []

    def add(label: str, n_needed: tuple[int, ...], measure: Any, limit: float) -> None:
        if any(n in failed for n in n_needed):  # a run that did not converge misses them all
            checks.append((label, "run failed", False))
            return
        if not all(n in ours for n in n_needed):
            checks.append((label, "not run", None))
            return
        value = measure()
        checks.append((label, f"{value:.2f}", value < limit if "<" in label else value <= limit))

    # CPU to converge: from the router answering /status (start-up is shown on its own)
    cpu = lambda n: ours[n]["converge_cpu_s_mean"]  # noqa: E731
    add(f"N=50 converged < {CONVERGE_50_S:g} s", (50,), lambda: ours[50]["convergence_s"],
        CONVERGE_50_S)  # fmt: skip
    add(f"N=50 CPU-s per router <= {CPU_50_S:g}", (50,), lambda: cpu(50), CPU_50_S)
    add(f"N=100 converged < {CONVERGE_100_S:g} s", (100,), lambda: ours[100]["convergence_s"],
        CONVERGE_100_S)  # fmt: skip
    add(f"CPU-s ratio N50/N20 <= {RATIO_50_20:g}", (20, 50), lambda: cpu(50) / cpu(20),
        RATIO_50_20)  # fmt: skip
    add(f"CPU-s ratio N100/N50 <= {RATIO_100_50:g}", (50, 100), lambda: cpu(100) / cpu(50),
        RATIO_100_50)  # fmt: skip
    add(f"N=50 /status p99 < {STATUS_P99_50_S * 1e3:g} ms (s)", (50,),
        lambda: ours[50]["status_p99_s"], STATUS_P99_50_S)  # fmt: skip
    return checks


def print_results(results: list[dict[str, Any]]) -> bool:
    """Print the table and the targets; True if every target that ran passed."""
    for r in results:
        if "failed" in r:
            print(f"{r['kind']} N={r['n']}: FAILED: {r['failed']}")
    done = [r for r in results if "failed" not in r]
    if done:
        heads = [f"{r['kind']} {r['n']}" for r in done]
        width = max(len(label) for label, _, _ in ROWS)
        print(f"| {'':{width}} | " + " | ".join(heads) + " |")
        print(f"| {'-' * width} |" + "|".join("-" * (len(h) + 2) for h in heads) + "|")
        for label, key, fmt in ROWS:
            cells = [_cell(r.get(key), fmt) for r in done]
            print(f"| {label:{width}} | " + " | ".join(cells) + " |")
    print()
    ok = True
    for label, measured, passed in targets(results):
        verdict = "n/a" if passed is None else ("PASS" if passed else "FAIL")
        ok = ok and passed is not False
        print(f"{verdict:4}  {label}: {measured}")
    return ok


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    return fmt.format(value) if not isinstance(value, str) else value
