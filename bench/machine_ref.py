"""How fast this machine is today, for reading bench/scale.py's times across runs.

The scale benchmark's times are the routers' total CPU over the machine's cores, and the
same commit has measured 1.7x apart on two days here (BENCHMARKS.md, "Scale"). So every
run also records, measured alone before the routers start:

- ``loop_cpu_s``: the CPU-s of a fixed pure-Python loop in a fresh interpreter (what the
  routers' own code runs at);
- ``import_cpu_s``: the CPU-s of a fresh interpreter importing what a default ``weave
  launch`` imports (the CLI's modules, then the router's parts, the collector off as in
  a launch), and doing nothing else;
- ``import_floor_s(n)``: n-1 such imports spread over every core: a time the chain launch
  of n routers cannot beat however little the routers do once they are up.

Each figure is the median of three runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

LOOP_CODE = "s = 0\nfor i in range(3_000_000):\n    s += i\n"
IMPORT_CODE = """\
import gc
gc.disable()
import types
import setproctitle
import weavenet.cli.main
import weavenet.daemon
from weavenet.startup import import_parts
import_parts(types.SimpleNamespace(
    no_dns=False, weave_bridge="weave", proxy=True,
    docker_api="unix:///nonexistent/docker.sock",  # as with no Docker daemon: no client
))
"""


def child_cpu_s(code: str, runs: int = 3) -> float:
    """Median CPU-s (user + system) of ``python -c code`` over ``runs`` fresh processes."""
    times = []
    for _ in range(runs):
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"reference run failed (exit status {status}): {code[:60]!r}")
        times.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(times)


def measure() -> dict[str, float]:
    return {
        "loop_cpu_s": child_cpu_s(LOOP_CODE),
        "import_cpu_s": child_cpu_s(IMPORT_CODE),
        "cores": float(os.cpu_count() or 1),
    }


def import_floor_s(machine: dict[str, float], n: int) -> float:
    return (n - 1) * machine["import_cpu_s"] / machine["cores"]


def describe(machine: dict[str, float], sizes: list[int]) -> str:
    floors = ", ".join(f"N={n} {import_floor_s(machine, n):.1f} s" for n in sizes)
    return (
        f"this machine: a 3M-step Python loop {machine['loop_cpu_s']:.2f} CPU-s; importing "
        f"what a router imports {machine['import_cpu_s']:.2f} CPU-s; those imports alone, "
        f"N-1 at once on {machine['cores']:g} cores: {floors}"
    )
