"""Scale benchmark (`make bench-scale`): N routers, each in its own host namespace with the
data plane on (`weave launch`: the weave bridge, fastdp, sleeve, IPAM, DNS), chain-started.

For each N (default 20, 50, 100) a harness Cluster makes N host namespaces on one underlay
bridge. Router 0 is launched alone (start-up alone), then routers 1..N-1 are launched all
at once, router k given only router k-1 (discovery does the rest); the clock starts there.
A probe thread per router (inside its namespace, so polling costs no subprocess) GETs
/status every --poll seconds, recording each reply's latency, until every router sees N
peers, the full mesh in its topology and N-1 established connections of its own.

Then: CPU-s and peak RSS per router (from /proc), mesh TCP and overlay bytes sent (from
/metrics), the "Multiple connections" lines in the logs. With the Go weaver 2.8.1 of
../shared/anchor (or $GO_WEAVER) the same chain is run for N = 20 and 50 (--go-sizes).

Neighbour table: the kernel's IPv4 neighbour table is one table for every namespace, with
gc_thresh3 = 1024 entries (not settable inside a namespace on this kernel), and 100 hosts
that all talk to each other need 100 x 99 underlay entries. Permanent entries do not count
against gc_thresh3, so the bench gives every host a permanent entry for every other host's
underlay address (one `ip -batch` per host) before anything starts.

Machine speed: the times are the routers' total CPU over the cores, and this machine's
speed varies from day to day, so each run first measures, alone, a fixed Python loop and
a process importing what a router imports, and prints the floor those imports set on the
chain launch (bench/machine_ref.py).

Exit status: 0 all targets met, 1 a target missed, 2 the run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import machine_ref
import wire_clock
from netbench import BenchError, cpu_seconds, peak_rss_mb, progress
from scale_probe import (
    dns_query,
    http_get,
    lacking,
    mesh_counts,
    metric_max,
    metric_sum,
)
from scale_report import print_results, summarize

from weavenet.harness.goweaver import (
    GoWeaver,
    InteropCluster,
    default_go_weaver,
    go_weaver_unusable_reason,
)
from weavenet.harness.netns import Host
from weavenet.harness.netns_thread import enter_netns
from weavenet.harness.util import pid_alive, run_cmd, venv_bin

API_ADDR = ("127.0.0.1", 6784)
API = "{}:{}".format(*API_ADDR)
DNS = ("127.0.0.1", 53)  # every router serves DNS here (--dns-listen-address)


class Router:
    """One router under test (ours or Go's) and what was measured of it."""

    def __init__(self, host: Host, index: int) -> None:
        self.host, self.index = host, index
        self.pid: int | None = None
        self.go: GoWeaver | None = None
        self.stats: dict[str, Any] = {
            "latencies": [],  # kernel-stamped (wire_clock.py)
            "thread_latencies": [],  # as the probe thread saw them
            "stamped": 0,
            "asked_at": [],
            "dns": [],
        }
        self.converged_at: float | None = None

    def alive(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)


# ---- the underlay --------------------------------------------------------------------
def pin_neighbours(cluster: InteropCluster) -> None:
    """A permanent neighbour entry on every host for every other host (see the docstring)."""
    macs = {}
    for host in cluster.hosts:
        link = json.loads(host.run(["ip", "-j", "link", "show", "eth0"]).stdout)[0]
        macs[host.ip] = link["address"]
    for host in cluster.hosts:
        lines = [
            f"neigh replace {ip} lladdr {mac} dev eth0 nud permanent"
            for ip, mac in macs.items()
            if ip != host.ip
        ]
        run_cmd(["ip", "-n", host.netns, "-batch", "-"], input="\n".join(lines) + "\n")


# ---- launching -----------------------------------------------------------------------
def launch_ours(
    router: Router, peers: list[str], env: dict[str, str] | None, extra: list[str]
) -> None:
    """`weave launch` in the router's namespace; records its wall time and the CPU of the
    CLI (wait4: the router itself is not its waited-for child) and of the router."""
    host = router.host
    # the proxy's socket in the run's own directory, not the host's /var/run/weave
    proxy = ["-H", f"unix://{host.cluster.tmpdir}/proxy-{router.index}.sock"]
    argv = [str(venv_bin() / "weave"), "launch", "--nickname", f"r{router.index}", *proxy]
    argv += ["--dns-listen-address", f"{DNS[0]}:{DNS[1]}", *extra, *peers]
    started = time.monotonic()
    host.launched = True
    with open(host.cluster.tmpdir / f"launch-{router.index}.log", "wb") as out:
        proc = subprocess.Popen(
            host.exec_argv(argv),
            env={**host.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    router.stats["launch_s"] = time.monotonic() - started
    router.stats["cli_cpu_s"] = usage.ru_utime + usage.ru_stime
    router.pid = host.router_pid()
    if router.pid is None:
        tail = (host.cluster.tmpdir / f"launch-{router.index}.log").read_text()[-1500:]
        raise BenchError(f"no router on {host.name} after weave launch:\n{tail}")
    # a router still starting when `weave launch` gives up (30 s) is counted, not fatal
    router.stats["launch_failed"] = os.waitstatus_to_exitcode(status) != 0


def launch_go(router: Router, binary: Path, peers: list[str]) -> None:
    host = router.host
    go = host.cluster.go_weaver(
        host,
        binary,
        name=f"a2:00:00:00:{router.index >> 8:02x}:{router.index & 0xFF:02x}",
        nickname=f"go{router.index}",
        peers=peers,
        args=["--ipalloc-range=10.32.0.0/12", f"--dns-listen-address={DNS[0]}:{DNS[1]}"],
    )
    router.go = go
    started = time.monotonic()
    go.start(timeout=120)
    router.stats["launch_s"] = time.monotonic() - started
    router.pid = go.pid()
    if router.pid is None:
        raise BenchError(f"no Go weaver pid on {host.name}")


# ---- probing -------------------------------------------------------------------------
def probe(router: Router, n: int, t0: float, poll: float, stop: threading.Event) -> None:
    """In the router's namespace: GET /status every `poll` s until `stop`."""
    enter_netns(router.host.netns)
    latencies = router.stats["latencies"]
    while not stop.is_set():
        asked = time.monotonic()
        try:
            reply: wire_clock.Reply | None = wire_clock.http_get(*API_ADDR, "/status")
        except (OSError, ValueError):
            reply = None
        if reply is not None and reply.status == 200:
            text, took = reply.body.decode(errors="replace"), reply.seconds
            router.stats["thread_latencies"].append(reply.thread_seconds)
            router.stats["stamped"] += reply.stamped
            counts = mesh_counts(text)
            router.stats["last_counts"] = counts
            if "ready_cpu_s" not in router.stats:
                pid = router.host.router_pid() if router.go is None else router.go.pid()
                router.stats["ready_cpu_s"] = cpu_seconds(pid or 0)
                router.stats["ready_s"] = time.monotonic() - t0
            latencies.append(took)
            router.stats["asked_at"].append(asked - t0)
            router.stats["dns"].append(dns_query(DNS))  # the router answers: so does DNS
            done = counts is not None and counts.converged(n)
            if done and router.converged_at is None:
                router.converged_at = time.monotonic() - t0
            elif not done:
                router.converged_at = None  # lost it again: not converged yet
        stop.wait(max(0.0, poll - (time.monotonic() - asked)))


def diagnose(router: Router) -> str:
    """For a run that did not converge: what this router's topology still lacks."""
    enter_netns(router.host.netns)
    return f"r{router.index}: {lacking(API)}"


def read_metrics(router: Router) -> None:
    """After convergence, in the router's namespace: its byte counters and loop metric."""
    enter_netns(router.host.netns)
    try:
        code, text = http_get(API, "/metrics")
    except OSError:
        return
    if code != 200:
        return
    router.stats["mesh_sent_kb"] = (metric_sum(text, "weavenet_mesh_sent_bytes_total") or 0) / 1024
    overlay = metric_sum(text, "weavenet_overlay_sent_bytes_total")
    router.stats["overlay_sent_kb"] = (overlay or 0) / 1024
    router.stats["loop"] = metric_max(text, "weavenet_event_loop")
    ready = metric_sum(text, "weavenet_ready_cpu_seconds")
    if ready is not None:  # the router's own count at the moment: see below
        router.stats["probed_ready_cpu_s"] = router.stats.get("ready_cpu_s")
        router.stats["ready_cpu_s"] = ready


# ---- one run -------------------------------------------------------------------------
def wait_converged(routers: list[Router], t0: float, timeout: float) -> float:
    while True:
        elapsed = time.monotonic() - t0
        done = sum(r.converged_at is not None for r in routers)
        progress(f"  {done}/{len(routers)} converged, {elapsed:.1f} s", final=False)
        if done == len(routers):
            return max(r.converged_at or 0.0 for r in routers)
        dead = [r.index for r in routers if r.pid is not None and not r.alive()]
        if dead:
            raise BenchError(f"routers {dead} died")
        if elapsed > timeout:
            seen = Counter(str(r.stats.get("last_counts")) for r in routers).most_common(5)
            stuck = [r for r in routers if r.converged_at is None][:2]
            with ThreadPoolExecutor(max_workers=3) as pool:
                lines = list(pool.map(diagnose, stuck))
                # then the routers the first one sees as lagging: how do they see themselves?
                named = {int(m) for m in re.findall(r"'r(\d+): ", lines[0])}
                lagging = [routers[i] for i in sorted(named) if i < len(routers)][:3]
                lines += list(pool.map(diagnose, lagging))
            for line in lines:
                progress(line, final=True)
            raise BenchError(
                f"only {done}/{len(routers)} converged after {timeout:g} s; last /status "
                f"counts (peers, in topology, connections, established) x routers: {seen}"
            )
        time.sleep(0.2)


def sampling(args: argparse.Namespace, n: int) -> dict[str, str]:
    """With --sample: the environment that samples routers N/4, N/2 and 3N/4 (their CLI and
    router processes) with bench/cpu_sampler into files FILE.<pid>."""
    if args.sample is None:
        return {}
    args.sample.parent.mkdir(parents=True, exist_ok=True)
    sampler = Path(__file__).resolve().parent / "cpu_sampler"
    path = os.pathsep.join(p for p in (str(sampler), os.environ.get("PYTHONPATH")) if p)
    nicks = ",".join(f"r{i}" for i in sorted({n // 4, n // 2, 3 * n // 4}))
    out = str(args.sample)
    return {"PYTHONPATH": path, "WEAVENET_SAMPLE_NICKS": nicks, "WEAVENET_SAMPLE_OUT": out}


def run_chain(cluster: InteropCluster, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    n = len(cluster.hosts)
    routers = [Router(host, i) for i, host in enumerate(cluster.hosts)]
    profiled = n // 2 if args.profile and kind == "weavenet" else None

    def start(r: Router) -> None:
        peers = [routers[r.index - 1].host.ip] if r.index else []
        if kind == "go":
            launch_go(r, args.go_weaver, peers)
        else:
            env = {"WEAVENET_PROFILE": str(args.profile)} if r.index == profiled else None
            launch_ours(r, peers, {**(env or {}), **sampling(args, n)}, args.launch_args)

    start(routers[0])  # alone: the start-up cost with nothing else starting
    routers[0].stats["ready_cpu_s"] = cpu_seconds(routers[0].pid or 0)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=2 * n) as pool:
        t0 = time.monotonic()
        probes = [pool.submit(probe, r, n, t0, args.poll, stop) for r in routers]
        launches = [pool.submit(start, r) for r in routers[1:]]
        try:
            for job in launches:
                job.result()
            progress(f"  all launched after {time.monotonic() - t0:.1f} s", final=True)
            convergence = wait_converged(routers, t0, args.timeout)
            progress(f"  converged in {convergence:.2f} s", final=True)
            stop.set()  # latency is sampled during convergence; nor may probes disturb below
            for r in routers:
                r.stats["total_cpu_s"] = cpu_seconds(r.pid or 0)
                r.stats["rss_peak_mb"] = peak_rss_mb(r.pid or 0)
                r.stats["converged_s"] = r.converged_at
            for job in probes:
                job.exception()  # their last replies in before the scrapes below
            if kind == "weavenet":
                list(pool.map(read_metrics, routers))
        finally:
            stop.set()
            for job in probes:
                job.exception()
            for r in routers:
                r.pid = r.pid or r.host.router_pid()
            _stop_routers(routers)
            _keep_logs(cluster, args.keep_logs)
    for r in routers:
        r.stats["multiple_connections"] = _log(r).count("Multiple connections")
    result = summarize(kind, n, convergence, [r.stats for r in routers])
    probed = ("ready_s", "asked_at", "latencies", "dns", "ready_cpu_s", "probed_ready_cpu_s")
    result["probes"] = [{k: r.stats.get(k) for k in probed} for r in routers]  # for --json
    return result


def _log(r: Router) -> str:
    return r.go.log() if r.go is not None else r.host.log()


def _keep_logs(cluster: InteropCluster, where: Path | None) -> None:
    """Copy every router log to `where`/<prefix>/ (the harness deletes its temp dir)."""
    if where is None:
        return
    dest = where / cluster.prefix
    dest.mkdir(parents=True, exist_ok=True)
    for host in cluster.hosts:
        for log in (host.state_dir / "weaver.log", cluster.tmpdir / f"{host.name}-go/weaver.log"):
            if log.exists():
                shutil.copy(log, dest / f"{host.name}-{log.parent.name}.log")
    progress(f"  logs kept in {dest}", final=True)


def _stop_routers(routers: list[Router]) -> None:
    """SIGTERM every router at once (the harness would `weave stop` them one by one)."""
    for r in routers:
        if r.go is None and r.pid is not None and r.host.owns_pid(r.pid):
            os.kill(r.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for r in routers:
        if r.go is None:
            while r.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not r.alive():
                r.host.launched = False


def compile_weavenet() -> None:
    """Byte-compile weavenet once, as an installed package is: this sandbox sets
    PYTHONDONTWRITEBYTECODE, and an editable checkout then recompiles ~120 modules in
    every router at start (0.12 CPU-s each), which no installed router pays."""
    import compileall

    import weavenet

    compileall.compile_dir(str(Path(weavenet.__file__).parent), quiet=1)


def run_size(kind: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    progress(f"{kind} N={n}: making {n} host namespaces", final=True)
    prefix = "sc" + secrets.token_hex(2)
    with InteropCluster(n, prefix=prefix, underlay=f"10.199.{secrets.randbelow(250)}.0/24") as cl:
        pin_neighbours(cl)
        return run_chain(cl, kind, args)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,50,100", help="router counts, e.g. 20,50")
    parser.add_argument("--go-sizes", default="20,50", help="router counts for the Go weaver")
    parser.add_argument("--no-go", action="store_true", help="skip the Go weaver")
    parser.add_argument("--go-weaver", type=Path, default=None, help="the Go weaver binary")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between /status polls")
    parser.add_argument("--timeout", type=float, default=150.0, help="convergence limit, s")
    parser.add_argument("--profile", type=Path, help="cProfile router N/2 into this file")
    parser.add_argument(
        "--sample", type=Path, help="CPU-sample routers N/4, N/2, 3N/4 into FILE.<pid> files"
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the router logs under this dir")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--launch-args",
        default="",
        help="more `weave launch` flags for our routers, e.g. '--no-fast-sleeve'",
    )
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s]
        args.go_sizes = [] if args.no_go else [int(s) for s in args.go_sizes.split(",") if s]
    except ValueError:
        parser.error("--sizes and --go-sizes take comma-separated integers, e.g. 20,50")
    if any(not 2 <= s <= 200 for s in args.sizes + args.go_sizes):
        parser.error("router counts must be in 2..200")
    args.launch_args = args.launch_args.split()
    args.go_weaver = args.go_weaver or Path(os.environ.get("GO_WEAVER") or default_go_weaver())
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench-scale: needs root (network namespaces)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    runs = [("weavenet", n) for n in args.sizes]
    if args.go_sizes:
        reason = go_weaver_unusable_reason(args.go_weaver)
        if reason is None:
            runs += [("go", n) for n in args.go_sizes]
        else:
            print(f"bench-scale: Go weaver skipped: {reason}", file=sys.stderr)
    compile_weavenet()
    machine = machine_ref.measure()  # alone, before any router: see bench/machine_ref.py
    progress(machine_ref.describe(machine, args.sizes), final=True)
    results = []
    try:
        with wire_clock.keep_stamping():  # for as long as the probes run
            for kind, n in runs:
                try:
                    results.append(run_size(kind, n, args))
                except BenchError as exc:
                    print(f"\nbench-scale: {kind} N={n} failed: {exc}", file=sys.stderr)
                    results.append({"kind": kind, "n": n, "failed": str(exc)})
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    ok = print_results(results)
    print(machine_ref.describe(machine, args.sizes))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "runs": results}, indent=2) + "\n")
    if any("failed" in r for r in results):
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
