"""One overlay path measured on its own, for bench/fast_sleeve.py.

The data-plane benchmark is bench/dataplane.py (`make bench`: every path in one table, one
run); `make bench-sleeve` is that table's sleeve rows. What is left here is the per-path
measurement bench/fast_sleeve.py builds on, made of the shared tools in bench/netbench.py.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from netbench import (
    BenchError,
    cpu_seconds,
    iperf,
    ping_rtts,
    preflight,
    progress,
    start_iperf_server,
)

from weavenet.harness import Container, Host
from weavenet.harness.containers import attached_container, connections

__all__ = ["BenchError", "measure_path", "preflight", "progress", "start_iperf_server"]


def _container(host: Host, name: str, cidr: str) -> Container:
    return attached_container(host, name, cidr)


def _connections(host: Host) -> str:
    return connections(host)


def measure_path(
    name: str,
    src: Host | Container,
    dst_ip: str,
    routers: Sequence[Host],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Pings, a warm-up, then --runs single-stream iperf3 runs with each router's CPU %."""
    pids = {h.name: h.router_pid() for h in routers}
    if any(pid is None for pid in pids.values()):
        raise BenchError(f"{name}: a router is not running: {pids}")
    rtts = ping_rtts(src, dst_ip, args.pings)
    iperf(src, dst_ip, args.warmup)  # PMTU discovery, slow start, MAC learning
    runs = []
    for i in range(args.runs):
        before = {h: cpu_seconds(p) for h, p in pids.items() if p is not None}
        start = time.monotonic()
        run = iperf(src, dst_ip, args.seconds)
        elapsed = time.monotonic() - start
        for h, p in pids.items():
            if p is not None:
                run[f"cpu_pct_{h}"] = 100.0 * (cpu_seconds(p) - before[h]) / elapsed
        runs.append(run)
        progress(f"  {name} run {i + 1}/{args.runs}: {run['mbps']:.0f} Mbit/s")
    return {"runs": runs, "ping_ms": rtts}
