"""The data plane in one table (`make bench`): every path side by side, in one run.

Each path gets its own 2-host emulated LAN (weavenet.harness.Cluster; nothing is set up in
the root namespace), all built at the start and alive together, so the rounds interleave
without restarts: round r measures every path once, in a rotating order, and load drifts
on this shared machine hit every path alike.

  underlay       h1 -> h2 over the raw veth/bridge LAN
  vxlan          a hand-made kernel VXLAN between two containers (static fdb, MTU 1376)
  fastdp         our routers, default `weave launch`
  fsleeve        our fast sleeve: `--no-fastdp`           (fsleeve-enc: + `--password`)
  sleeve         our Weave-compatible sleeve: `--no-fastdp --no-fast-sleeve`  (sleeve-enc)
  go-sleeve      two Go weavers 2.8.1 (../shared/anchor/weaver or $GO_WEAVER)  (go-sleeve-enc)

Before measuring, each path's routers must show the overlay it claims in `weave status
connections`; a path that cannot (a flag refused, another overlay) prints `n/a (not
available: why)`. Per round and path: iperf3 TCP with 1 and with 4 streams, and a share
of the pings; router CPU-seconds from /proc/PID/stat around each iperf3 run; peak RSS
(VmHWM) at the end. Exit status: 0 every target met, 1 one missed, 2 the run failed,
3 none missed but one could not be evaluated (a path unavailable).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import dataplane_paths as paths
from dataplane_paths import Endpoint, PathUnavailable
from dataplane_report import PATHS, STREAMS, overall, round_order, summarize, table
from mesh_report import machine
from netbench import (
    BenchError,
    cpu_seconds,
    install_signal_handlers,
    iperf,
    peak_rss_mb,
    ping_rtts,
    preflight,
    progress,
)

from weavenet.harness import Cluster, CommandError, CommandTimeout, InteropCluster
from weavenet.harness.goweaver import GO_WEAVER_ENV, default_go_weaver, go_weaver_unusable_reason
from weavenet.harness.util import random_prefix

FAILURES = (BenchError, CommandError, CommandTimeout, TimeoutError, RuntimeError, OSError)
LAUNCH_THREADS = 4
START = time.monotonic()
EXIT = {"PASS": 0, "NO TARGET": 0, "FAIL": 1, "INCOMPLETE": 3}
Setup = Callable[[Cluster], paths.Setup]


def setups(args: argparse.Namespace, known_flags: str) -> dict[str, Setup]:
    pw = ["--password", args.password]
    fast, compat = ["--no-fastdp"], ["--no-fastdp", "--no-fast-sleeve"]

    def our(name: str, flags: list[str]) -> Setup:
        return lambda cluster: paths.ours(cluster, name, flags, known_flags)

    def go(name: str, password: str | None) -> Setup:
        return lambda cluster: paths.go_sleeve(cluster, name, args.go_weaver, password)

    return {
        "underlay": paths.underlay,
        "vxlan": paths.hand_made_vxlan,
        "fastdp": our("fastdp", []),
        "fsleeve": our("fsleeve", fast),
        "fsleeve-enc": our("fsleeve-enc", [*fast, *pw]),
        "sleeve": our("sleeve", compat),
        "sleeve-enc": our("sleeve-enc", [*compat, *pw]),
        "go-sleeve": go("go-sleeve", None),
        "go-sleeve-enc": go("go-sleeve-enc", args.password),
    }


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _dump_logs(cluster: Cluster) -> None:
    """The routers' last log lines, before teardown removes them."""
    for host in cluster.hosts:
        tail = host.log().splitlines()[-20:]
        if tail:
            progress(f"--- {cluster.prefix} {host.name} weaver.log (last {len(tail)} lines)")
            progress("\n".join(tail))
    for go in getattr(cluster, "go_weavers", []):
        progress(f"--- {go} log\n{go.log_tail(20)}")


def set_up(stack: ExitStack, args: argparse.Namespace, missing: dict[str, str]) -> dict:
    """Every requested path on its own cluster; the unavailable ones go into `missing`.
    First every path starts its routers, then each is waited for and wired."""
    fns = setups(args, paths.our_weaver_flags())
    go_reason = go_weaver_unusable_reason(args.go_weaver)
    run_id = random_prefix()
    pending: dict[str, tuple[Cluster, paths.Setup]] = {}
    ends: dict[str, Endpoint] = {}
    started = time.monotonic()
    for index, name in enumerate(args.paths):
        if name.startswith("go-") and go_reason is not None:
            missing[name] = f"not available: {go_reason}"
            continue
        kind = InteropCluster if name.startswith("go-") else Cluster
        cluster = stack.enter_context(kind(2, prefix=f"b8{run_id}{index}"))
        pending[name] = (cluster, fns[name](cluster))
    # The first steps only run commands (weave launch, a Go weaver's start): in threads, so
    # the routers' start-ups overlap. The second steps wire containers, one at a time.
    with ThreadPoolExecutor(max_workers=LAUNCH_THREADS) as pool:
        steps = [pool.submit(_step, name, *pair, missing, ends) for name, pair in pending.items()]
        for step in steps:
            step.result()  # re-raises what _step does not handle
    progress(f"routers started after {time.monotonic() - started:.0f} s")
    for name, (cluster, setup) in pending.items():
        if name not in missing:
            _step(name, cluster, setup, missing, ends)
            if name in ends:
                progress(f"{name}: ready after {time.monotonic() - started:.0f} s")
    return ends


def _step(name: str, cluster: Cluster, setup: paths.Setup, missing: dict, ends: dict) -> None:
    """Run `setup` to its next step; a path that cannot be measured is torn down now."""
    try:
        next(setup)
        return
    except StopIteration as done:
        ends[name] = done.value
        return
    except PathUnavailable as exc:
        missing[name] = f"not available: {exc}"
    except FAILURES as exc:
        missing[name] = f"set-up failed: {_first_line(exc)}"
        progress(f"{name}: set-up failed: {exc}")
        _dump_logs(cluster)
    progress(f"{name}: {missing[name]}")
    cluster.close()  # its namespaces and routers go now, not at the end


def measure_once(end: Endpoint, args: argparse.Namespace, rnd: int, out: dict) -> None:
    """One round of one path: iperf3 with 1 then 4 streams, then this round's pings."""
    for streams in STREAMS:
        pids = end.router_pids()
        if None in pids:
            raise BenchError(f"a router of {end.name} is not running")
        before = [cpu_seconds(p) for p in pids if p is not None]
        run = iperf(end.src, end.dst_ip, args.seconds, streams)
        after = [cpu_seconds(p) for p in pids if p is not None]
        run["cpu_s"] = sum(after) - sum(before) if pids else None
        run.update(round=rnd, streams=streams)
        out["runs"].append(run)
        took = f"router CPU {_num(run['cpu_s'])} s; {time.monotonic() - START:.0f} s in"
        progress(f"round {rnd + 1} {end.name} P{streams}: {run['mbps']:.0f} Mbit/s ({took})")
    count = max(1, math.ceil(args.pings / args.rounds))
    out["rtts"] += ping_rtts(end.src, end.dst_ip, count, args.ping_interval)


def measure(ends: dict[str, Endpoint], args: argparse.Namespace, missing: dict) -> dict:
    data: dict[str, dict[str, Any]] = {name: {"runs": [], "rtts": []} for name in ends}
    live = list(ends)
    for name in list(live):  # warm-up: ARP, MAC learning, fdb entries, PMTU, slow start
        try:
            iperf(ends[name].src, ends[name].dst_ip, args.warmup, 1)
        except FAILURES as exc:
            missing[name] = f"warm-up failed: {_first_line(exc)}"
            live.remove(name)
    for rnd in range(args.rounds):
        for name in round_order(live, rnd, args.rounds):
            try:
                measure_once(ends[name], args, rnd, data[name])
            except FAILURES as exc:
                missing[name] = f"failed in round {rnd + 1}: {_first_line(exc)}"
                live.remove(name)
    for name in live:
        data[name].update(finish(ends[name]))
    return {name: data[name] for name in live}


def finish(end: Endpoint) -> dict[str, Any]:
    """Peak RSS of the larger router and the overlays its connections show at the end."""
    try:
        pids = [p for p in end.router_pids() if p is not None]
        rss = max((peak_rss_mb(p) for p in pids), default=None)
        return {"rss_mb": rss, "overlays_at_end": end.overlays()}
    except FAILURES as exc:  # a router gone after its last round: keep its numbers, say so
        return {"rss_mb": None, "overlays_at_end": [[f"unreadable: {_first_line(exc)}"]]}


def report(args: argparse.Namespace, data: dict, missing: dict, loads: list) -> str:
    summary = {name: summarize(d["runs"], d["rtts"]) for name, d in data.items()}
    rss = {name: d["rss_mb"] for name, d in data.items()}
    m = machine()
    count = max(1, math.ceil(args.pings / args.rounds))
    print(
        f"\nData plane, one run: {args.rounds} rounds, each measuring every path once in a "
        f"rotating order:\n  iperf3 TCP, 1 stream and 4 streams, {args.seconds:g} s each; "
        f"{count} pings {args.ping_interval * 1000:g} ms apart\n"
        f"  machine: {m['cpus']} vCPU {m['cpu_model']}, kernel {m['kernel']}; "
        f"load average {loads[0]:.1f} at start, {loads[1]:.1f} at end\n"
        "  Mbit/s: medians of the rounds (receiver); ping ms: p50/p99 of all pings\n"
        "  CPU s 1/4: both routers' CPU-seconds per iperf3 run, 1 and 4 streams (medians);\n"
        "  CPU s/Gbit: over all runs; peak RSS: VmHWM of the larger router, MB\n"
        "  each router row showed its overlay on both hosts (weave status connections)\n"
        "  before it was measured\n"
    )
    print("\n".join(table(args.paths, summary, rss, missing)))
    for name, d in data.items():
        want = PATHS[name][1]
        if want is not None and any(found != [want] for found in d["overlays_at_end"]):
            print(f"note: {name} showed {d['overlays_at_end']} at the end, not [{want!r}]")
    verdict = overall(summary, missing)
    print(f"\noverall: {verdict}")
    if args.json:
        record = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": m}
        record.update(loadavg=loads, summary=summary, missing=missing, raw=data)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return verdict


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians over them)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one iperf3 run")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed iperf3 run first, s")
    parser.add_argument("--pings", type=int, default=200, help="echo requests per path")
    parser.add_argument("--ping-interval", type=float, default=0.01, help="seconds")
    parser.add_argument("--password", default="s3cret-bench", help="for the encrypted paths")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"some of {','.join(PATHS)}")
    where = f"default ${GO_WEAVER_ENV} or ../shared/anchor/weaver"
    parser.add_argument("--go-weaver", type=Path, help=f"Go weaver binary ({where})")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    args.paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in args.paths if p not in PATHS]
    if not args.paths or unknown or len(set(args.paths)) != len(args.paths):
        parser.error(f"--paths: give distinct names among {', '.join(PATHS)} (got {unknown})")
    if args.rounds < 1 or args.seconds <= 0 or args.pings < 1 or args.ping_interval <= 0:
        parser.error("--rounds, --seconds, --pings and --ping-interval must be positive")
    if args.go_weaver is None:
        args.go_weaver = Path(os.environ.get(GO_WEAVER_ENV) or default_go_weaver())
    args.go_weaver = args.go_weaver.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    missing: dict[str, str] = {}
    try:
        preflight()
        loads = [os.getloadavg()[0]]
        with ExitStack() as stack:
            ends = set_up(stack, args, missing)
            data = measure(ends, args, missing)
            loads.append(os.getloadavg()[0])
        progress("torn down")
    except (BenchError, CommandError, CommandTimeout, TimeoutError, OSError) as exc:
        print(f"\nmake bench failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return EXIT[report(args, data, missing, loads)]


if __name__ == "__main__":
    sys.exit(main())
