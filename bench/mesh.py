"""Mesh control-plane benchmark (`make bench-mesh`).

Starts N `weaver` processes on loopback, router i on 127.0.0.(10+i) with mesh port 6783
and HTTP API on 6784, no initial peers. Once all answer /status, each router i>0 is told
(POST /connect) to connect to one random earlier router, i.e. a random tree, and the
clock starts. Convergence is reached when every router reports N peers with N*(N-1)
established connections in its topology and N-1 established connections of its own
(the full mesh, found by discovery). Then the mesh idles for --idle seconds while we
read each router's CPU time from /proc; RSS is read at the end.

Targets: convergence < 10 s, RSS <= 60 MB per router (Go weaver: 57 MB), idle CPU < 1 %.
Exit status: 0 all targets met, 1 a target missed, 2 the run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event
from types import FrameType
from typing import Any
from urllib.parse import urlencode

from mesh_report import build_result, print_result
from netbench import progress

PORT, HTTP_PORT = 6783, 6784
FIRST_HOST = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parents[1]
_PEERS = re.compile(r"^\s*Peers: (\d+)(?: \(with (\d+) established)?", re.M)
_CONNS = re.compile(r"^\s*Connections: \d+(?: \((\d+) established)?", re.M)


# cProfile with a CPU-time clock: 50 processes share 2 cores, so wall time would mostly
# measure waiting for a core. Writes the stats when the router exits on SIGTERM.
_PROFILED = """
import cProfile, sys, time
from weavenet.daemon import main
out, sys.argv = sys.argv[1], ["weaver", *sys.argv[2:]]
prof = cProfile.Profile(time.process_time)
try:
    prof.runcall(main)
finally:
    prof.dump_stats(out)
"""


class BenchError(RuntimeError):
    """The run itself failed (not merely missed a target)."""


@dataclass
class Node:
    index: int
    host: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    ready_s: float | None = None
    converged_s: float | None = None
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.host}:{PORT}"

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise BenchError(f"router {self.index} ({self.host}) exited:\n{tail}")


# ---- helpers -------------------------------------------------------------------------
def weaver_bin() -> str:
    for cand in (Path(sys.executable).parent / "weaver", REPO / ".venv" / "bin" / "weaver"):
        if cand.exists():
            return str(cand)
    found = shutil.which("weaver")
    if found is None:
        raise BenchError("cannot find the weaver executable (run `make venv`)")
    return found


def request(host: str, method: str, path: str, form: dict[str, Any] | None = None) -> str:
    conn = http.client.HTTPConnection(host, HTTP_PORT, timeout=10)
    try:
        body = urlencode(form, doseq=True) if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        if resp.status != 200:
            raise BenchError(f"{method} http://{host}:{HTTP_PORT}{path}: {resp.status} {text}")
        return text
    finally:
        conn.close()


def host_of(i: int) -> str:
    return f"127.0.0.{FIRST_HOST + i}"


def check_addresses_free(n: int) -> None:
    for i in range(n):
        for port in (PORT, HTTP_PORT):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as weaver does
                try:
                    sock.bind((host_of(i), port))
                except OSError as exc:
                    raise BenchError(f"{host_of(i)}:{port} is in use: {exc}") from exc


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def proc_status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no {key} for pid {pid}")


# ---- phases --------------------------------------------------------------------------
def weaver_argv(i: int, workdir: Path, args: argparse.Namespace) -> list[str]:
    host = host_of(i)
    argv = [weaver_bin()]
    if args.profile and i == args.routers // 2:  # diagnostic: one router under cProfile
        argv = [str(Path(argv[0]).parent / "python"), "-c", _PROFILED, str(args.profile)]
    argv += ["--name", f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}", "--nickname", f"r{i}"]
    argv += ["--host", host, "--port", str(PORT), "--state-dir", str(workdir / f"r{i}")]
    argv += ["--http-addr", f"{host}:{HTTP_PORT}"]
    return argv + (["--password", args.password] if args.password else [])


_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)


def start_all(workdir: Path, args: argparse.Namespace, nodes: list[Node]) -> None:
    """Appends each router as soon as it is spawned, so an interrupt can't orphan one."""
    for i in range(args.routers):
        log_path = workdir / f"r{i}.log"
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # Ctrl-C waits until it's listed
        try:
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    weaver_argv(i, workdir, args),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    preexec_fn=_unblock_signals,  # the child must not inherit the mask
                )
            nodes.append(Node(i, host_of(i), proc, log_path))
        finally:
            _unblock_signals()


def answers_status(node: Node) -> bool:
    node.check_alive()
    try:
        request(node.host, "GET", "/status")
        return True
    except (OSError, BenchError):
        return False


def wait_ready(nodes: list[Node], start: float, timeout: float) -> float:
    """Poll /status of every router not yet ready; returns the seconds until all are."""
    waiting = list(nodes)
    while waiting:
        for node in list(waiting):
            if answers_status(node):
                node.ready_s = time.monotonic() - start
                node.stats["rss_start_mb"] = proc_status_mb(node.proc.pid, "VmRSS")
                waiting.remove(node)
        elapsed = time.monotonic() - start
        progress(
            f"start-up: {len(nodes) - len(waiting)}/{len(nodes)} routers ready, {elapsed:.1f} s",
            final=False,
        )
        if waiting and elapsed > timeout:
            raise BenchError(f"{len(waiting)} routers not ready after {timeout} s")
        if waiting:
            time.sleep(0.1)
    progress(f"start-up: all {len(nodes)} routers ready in {elapsed:.2f} s", final=True)
    return elapsed


def connect_tree(nodes: list[Node], rng: random.Random) -> list[tuple[int, int]]:
    edges = [(i, rng.randrange(i)) for i in range(1, len(nodes))]
    for i, j in edges:
        request(nodes[i].host, "POST", "/connect", {"peer": [nodes[j].address]})
    return edges


def is_converged(node: Node, n: int) -> bool:
    node.check_alive()
    node.stats["polls"] = node.stats.get("polls", 0) + 1
    asked = time.monotonic()
    try:
        text = request(node.host, "GET", "/status")
    except OSError:  # a router too busy to answer in time is not converged yet
        text = ""
    took = time.monotonic() - asked
    node.stats["status_max_s"] = max(node.stats.get("status_max_s", 0.0), took)
    if not text:
        return False
    peers, conns = _PEERS.search(text), _CONNS.search(text)
    if not peers or not conns:
        raise BenchError(f"unexpected /status from router {node.index}:\n{text}")
    return (
        int(peers.group(1)) == n
        and int(peers.group(2) or 0) == n * (n - 1)
        and int(conns.group(1) or 0) == n - 1
    )


def poll_until_converged(node: Node, n: int, start: float, poll: float, stop: Event) -> None:
    while not stop.is_set():
        if is_converged(node, n):
            node.converged_s = time.monotonic() - start
            return
        stop.wait(poll)


def wait_converged(nodes: list[Node], start: float, args: argparse.Namespace) -> float:
    """Poll every unconverged router concurrently, each at most every --poll seconds (a
    /status costs the router a few ms of CPU), then confirm with one more sweep."""
    n, stop = len(nodes), Event()
    with ThreadPoolExecutor(max_workers=n) as pool:
        try:
            jobs = [
                pool.submit(poll_until_converged, nd, n, start, args.poll, stop) for nd in nodes
            ]
            while (busy := sum(not job.done() for job in jobs)) > 0:
                elapsed = time.monotonic() - start
                progress(
                    f"convergence: {n - busy}/{n} routers converged, {elapsed:.1f} s", final=False
                )
                if elapsed > args.timeout:
                    raise BenchError(
                        f"only {n - busy}/{n} routers converged after {args.timeout} s"
                    )
                wait(jobs, timeout=0.2, return_when=FIRST_EXCEPTION)
                for job in jobs:
                    if job.done():
                        job.result()  # re-raise a router's death
        finally:
            stop.set()
    regressed = [node.index for node in nodes if not is_converged(node, n)]
    if regressed:
        raise BenchError(f"routers {regressed} lost convergence again")
    total = max(node.converged_s or 0.0 for node in nodes)
    progress(f"convergence: all {n} routers converged in {total:.2f} s", final=True)
    return total


def measure_idle(nodes: list[Node], seconds: float) -> None:
    """CPU % per router over an idle window (no API calls during it), then RSS."""
    before = {node.index: cpu_ticks(node.proc.pid) for node in nodes}
    start = time.monotonic()
    deadline = start + seconds
    while (left := deadline - time.monotonic()) > 0:
        progress(f"idle: measuring CPU, {left:.0f} s left", final=False)
        time.sleep(min(1.0, left))
    elapsed = time.monotonic() - start
    for node in nodes:
        node.check_alive()
        ticks = cpu_ticks(node.proc.pid) - before[node.index]
        node.stats["idle_cpu_pct"] = 100.0 * ticks / CLK_TCK / elapsed
        node.stats["rss_mb"] = proc_status_mb(node.proc.pid, "VmRSS")
        node.stats["rss_peak_mb"] = proc_status_mb(node.proc.pid, "VmHWM")
    progress(f"idle: measured {elapsed:.1f} s", final=True)


def _signal_group(node: Node, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.proc.pid, sig)


def stop_all(nodes: list[Node]) -> None:
    for node in nodes:
        if node.proc.poll() is None:
            _signal_group(node, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for node in nodes:
        try:
            node.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(node, signal.SIGKILL)
            node.proc.wait()


# ---- main ----------------------------------------------------------------------------
def run(args: argparse.Namespace, workdir: Path, nodes: list[Node]) -> dict[str, Any]:
    start = time.monotonic()
    start_all(workdir, args, nodes)
    startup = wait_ready(nodes, start, args.timeout)
    ticks = {node.index: cpu_ticks(node.proc.pid) for node in nodes}
    start = time.monotonic()
    connect_tree(nodes, random.Random(args.seed))
    convergence = wait_converged(nodes, start, args)
    for node in nodes:
        node.stats["converge_cpu_s"] = (cpu_ticks(node.proc.pid) - ticks[node.index]) / CLK_TCK
    measure_idle(nodes, args.idle)
    rows = [
        {"index": nd.index, "host": nd.host, "ready_s": nd.ready_s,
         "converged_s": nd.converged_s, **nd.stats}
        for nd in nodes
    ]  # fmt: skip
    params = {"routers": args.routers, "idle_s": args.idle, "encrypted": bool(args.password)}
    return build_result(params, rows, {"startup_s": startup, "convergence_s": convergence})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routers", type=int, default=50, help="number of routers (2..240)")
    parser.add_argument("--idle", type=float, default=30.0, help="idle window in seconds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--password", help="run an encrypted mesh with this password")
    parser.add_argument("--timeout", type=float, default=180.0, help="per-phase limit, s")
    parser.add_argument(
        "--poll", type=float, default=1.0, help="min seconds between polls of one router"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for the random tree")
    parser.add_argument("--keep", action="store_true", help="keep the logs directory")
    parser.add_argument(
        "--profile", type=Path, help="run router N/2 under cProfile, writing its stats here"
    )
    args = parser.parse_args(argv)
    if not 2 <= args.routers <= 240:
        parser.error("--routers must be in 2..240")
    return args


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    try:
        check_addresses_free(args.routers)
    except BenchError as exc:
        print(f"bench-mesh: {exc}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="weavenet-bench-mesh-"))
    nodes: list[Node] = []
    try:
        result = run(args, workdir, nodes)
    except BenchError as exc:
        print(f"\nbench-mesh failed: {exc}", file=sys.stderr)
        args.keep = True
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        stop_all(nodes)
        if args.keep:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_result(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(result["pass"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
