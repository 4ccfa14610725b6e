"""Fast sleeve quick benchmark: iperf3 between two containers on two harness hosts over
the plain and the encrypted fast sleeve (`weave launch --no-fastdp [--password]`).

    .venv/bin/python bench/fast_sleeve.py [--runs 3] [--seconds 10]

Prints one line per path: median Mbit/s (1 stream), each router's CPU %, and the
throughput per router CPU-second at the receiver (less sensitive to a busy machine).
The full side-by-side table is `make bench`'s; this is the fast sleeve's own check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from sleeve import (
    BenchError,
    _connections,
    _container,
    measure_path,
    preflight,
    progress,
    start_iperf_server,
)

from weavenet.harness import Cluster, wait_until
from weavenet.harness.mesh import wait_for_mesh


def bench_path(args: argparse.Namespace, password: str | None) -> dict[str, Any]:
    with Cluster(2) as cluster:
        h1, h2 = cluster.hosts
        flags = ["--no-fastdp", *(["--password", password] if password else [])]
        h1.launch(*flags)
        h2.launch(*flags, h1.ip)
        wait_for_mesh([h1, h2], peers=2, established=1, timeout=30)
        wait_until(
            lambda: all("fast sleeve" in _connections(h) for h in (h1, h2)),
            timeout=40,
            message="fast sleeve on both hosts",
        )
        a = _container(h1, "a", "10.2.1.1/24")
        b = _container(h2, "b", "10.2.1.2/24")
        start_iperf_server(cluster, b)
        name = "encrypted fast sleeve" if password else "fast sleeve"
        result = measure_path(name, a, "10.2.1.2", [h1, h2], args)
        result["diagnostics"] = h2.report()["Router"]["OverlayDiagnostics"]["fast sleeve"]
        return result


def summary(name: str, result: dict[str, Any]) -> str:
    runs = result["runs"]
    mbps = statistics.median(r["mbps"] for r in runs)
    cpu1 = statistics.median(r["cpu_pct_h1"] for r in runs)
    cpu2 = statistics.median(r["cpu_pct_h2"] for r in runs)
    per_core = mbps / max(cpu2, 1.0) * 100 / 1000
    return (
        f"{name:<22} {mbps:7.0f} Mbit/s  router CPU h1 {cpu1:3.0f}% h2 {cpu2:3.0f}%  "
        f"{per_core:4.1f} Gbit/s per receiving-router core"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--pings", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        preflight()
        results = {"plain": bench_path(args, None), "encrypted": bench_path(args, "s3cret")}
    except BenchError as exc:
        print(f"fast sleeve bench failed: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(results, indent=1))
    progress("")
    print(summary("fast sleeve", results["plain"]))
    print(summary("encrypted fast sleeve", results["encrypted"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
