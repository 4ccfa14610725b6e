"""IPAM allocation benchmark (`make bench-ipam`, issue 6 acceptance 9).

Three routers with ``--ipalloc-range 10.32.0.0/12 --ipalloc-init consensus=3`` are launched
at the same moment, each given the other two as targets. The clock starts at launch; the
first ``POST /ip/<id>`` is sent to router 1 as soon as its HTTP port answers and blocks
until the peers have agreed on the ring: that answer is "launch to first allocation".

Then, on the ready ring, allocations over HTTP on keep-alive connections to router 1,
every one a new ident (so a new address, persisted before it is answered):
sequential (one client), then 8 concurrent clients (threads). Reported: p50/p99 latency
and allocations per second.

weavenet runs on loopback (127.0.0.60-62). If the Go weaver is there (/work/shared/anchor/
weaver or $GO_WEAVER) and we are root, the same run is made against three Go weavers in
network namespaces (weavenet.harness.Cluster; the recipe of anchor/README.md), with the
clients running inside the first host's namespace; otherwise that column is skipped.

Targets: >= 1,000 allocations/s and p99 <= 10 ms with 8 clients; first allocation <= 1 s.
Exit status: 0 all targets met, 1 a target missed, 2 the run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HOSTS = ["127.0.0.60", "127.0.0.61", "127.0.0.62"]
PORT, HTTP_PORT = 6783, 6784
IPAM_FLAGS = ["--ipalloc-range", "10.32.0.0/12", "--ipalloc-init", "consensus=3"]
GO_WEAVER = os.environ.get(
    "GO_WEAVER", str(Path(__file__).resolve().parents[2] / "shared" / "anchor" / "weaver")
)
TARGET_RATE, TARGET_P99_MS, TARGET_FIRST_S = 1000.0, 10.0, 1.0


class BenchError(RuntimeError):
    """The run itself failed (not merely missed a target)."""


# ---- measurement (also run inside a namespace: `ipam.py --client HOST:PORT`) ---------
def _connect(addr: str, timeout: float) -> http.client.HTTPConnection:
    host, _, port = addr.rpartition(":")
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def _post(conn: http.client.HTTPConnection, path: str) -> str:
    conn.request("POST", path)
    resp = conn.getresponse()
    body = resp.read().decode()
    if resp.status != 200 or "/" not in body:
        raise BenchError(f"POST {path}: {resp.status} {body!r}")
    return body


def first_allocation(addr: str, timeout: float) -> tuple[float, float]:
    """Retry until the router listens, then allocate; the monotonic times at which it
    accepted the connection and answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = _connect(addr, timeout)
        try:
            conn.connect()
        except ConnectionRefusedError:
            time.sleep(0.005)
            continue
        try:
            accepted = time.monotonic()
            _post(conn, "/ip/first")
            return accepted, time.monotonic()
        finally:
            conn.close()
    raise BenchError(f"no first allocation from {addr} within {timeout:.0f} s")


async def _allocations(addr: str, prefix: str, count: int, latencies: list[float]) -> None:
    """One keep-alive connection, one request at a time: a minimal HTTP/1.1 client, so
    that the client's own cost stays small next to the router's."""
    host, _, port = addr.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for i in range(count):
            start = time.perf_counter()
            path = f"/ip/{prefix}-{i}"
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            length = _content_length(head)
            body = (await reader.readexactly(length)).decode()
            if not head.startswith("HTTP/1.1 200") or "/" not in body:
                raise BenchError(f"POST {path}: {head.splitlines()[0]} {body!r}")
            latencies.append(time.perf_counter() - start)
    finally:
        writer.close()


def _content_length(head: str) -> int:
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            return int(value)
    raise BenchError(f"no Content-Length in {head!r}")


def throughput(addr: str, clients: int, count: int, tag: str) -> dict[str, float]:
    """``count`` allocations split over ``clients`` concurrent keep-alive connections."""
    per_client: list[list[float]] = [[] for _ in range(clients)]

    async def run_all() -> float:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                _allocations(addr, f"{tag}{i}", count // clients, per_client[i])
                for i in range(clients)
            )
        )
        return time.perf_counter() - start

    try:
        wall = asyncio.run(run_all())
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise BenchError(f"allocation failed: {exc}") from exc
    latencies = sorted(x for lats in per_client for x in lats)
    return {
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "rate": len(latencies) / wall,
    }


def measure_ready_ring(addr: str, count: int) -> dict[str, Any]:
    throughput(addr, 1, 200, "warm")  # warm-up: connections, caches, allocator pages
    return {
        "sequential": throughput(addr, 1, count, "seq"),
        "concurrent": throughput(addr, 8, count, "par"),
    }


# ---- weavenet on loopback ------------------------------------------------------------
def _weaver() -> str:
    cand = REPO / ".venv" / "bin" / "weaver"
    if cand.exists():
        return str(cand)
    found = shutil.which("weaver")
    if found is None:
        raise BenchError("cannot find the weaver executable (run `make venv`)")
    return found


def _check_free(hosts: list[str]) -> None:
    for host in hosts:
        for port in (PORT, HTTP_PORT):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, port))
                except OSError as exc:
                    raise BenchError(f"{host}:{port} is in use: {exc}") from exc


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def run_weavenet(workdir: Path, count: int) -> dict[str, Any]:
    _check_free(HOSTS)
    workdir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        launched = time.monotonic()
        for i, host in enumerate(HOSTS):
            peers = [f"{h}:{PORT}" for h in HOSTS if h != host]
            argv = [_weaver(), "--name", f"02:00:00:00:01:{i:02x}", "--nickname", f"b{i}"]
            argv += ["--host", host, "--port", str(PORT), "--http-addr", f"{host}:{HTTP_PORT}"]
            argv += ["--state-dir", str(workdir / f"b{i}"), *IPAM_FLAGS, *peers]
            with (workdir / f"b{i}.log").open("wb") as log:
                procs.append(subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True))
        up, first = first_allocation(f"{HOSTS[0]}:{HTTP_PORT}", 60.0)
        ready = measure_ready_ring(f"{HOSTS[0]}:{HTTP_PORT}", count)
        return {"up_s": up - launched, "first_s": first - launched, **ready}
    finally:
        _stop(procs)


# ---- the Go weaver in namespaces -----------------------------------------------------
def _go_argv(index: int, state: Path, peers: list[str]) -> list[str]:
    argv = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]
    argv += ["env", "CHECKPOINT_DISABLE=1"]
    argv += [GO_WEAVER, "--port=6783", f"--name=a2:00:00:00:01:{index:02x}"]
    argv += [f"--nickname=go{index}", "--docker-api=", "--datapath=datapath"]
    argv += ["--weave-bridge=weave", f"--http-addr=127.0.0.1:{HTTP_PORT}", "--no-dns"]
    argv += [f"--db-prefix={state}/weave", "--ipalloc-range=10.32.0.0/12"]
    return [*argv, "--ipalloc-init=consensus=3", *peers]


def _in_netns(host: Any, args: list[str], timeout: float) -> dict[str, Any]:
    """Run this script's client mode inside ``host``'s namespace; its JSON answer."""
    argv = [sys.executable, str(Path(__file__).resolve()), *args]
    done = host.run(argv, check=False, timeout=timeout)
    if done.returncode != 0:
        raise BenchError(f"client in {host.netns} failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run_go(count: int, state_root: Path) -> dict[str, Any] | str:
    """The same measurement against the Go weaver, or a reason why it was skipped."""
    if not os.access(GO_WEAVER, os.X_OK):
        return f"no Go weaver at {GO_WEAVER}"
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare (network namespaces)"
    from weavenet.harness.netns import Cluster

    with Cluster(3) as cluster:
        hosts = list(cluster)
        first_box: dict[str, Any] = {}
        poller = threading.Thread(
            target=lambda: first_box.update(
                _in_netns(hosts[0], ["--first", f"127.0.0.1:{HTTP_PORT}"], 90.0)
            )
        )
        poller.start()
        time.sleep(0.5)  # the poller is up (python start-up) before the clock starts
        launched = time.monotonic()
        for i, host in enumerate(hosts):
            state = Path(tempfile.mkdtemp(prefix=f"go{i}-", dir=state_root))
            peers = [h.ip for h in hosts if h is not host]
            log = (state / "weaver.log").open("wb")
            host.popen(_go_argv(i, state, peers), stdout=log, stderr=log, cwd=state)
        poller.join(95.0)
        if "at" not in first_box:
            raise BenchError("the Go weaver gave no first allocation")
        ready = _in_netns(hosts[0], ["--client", f"127.0.0.1:{HTTP_PORT}", str(count)], 300.0)
        up, first = float(first_box["up"]) - launched, float(first_box["at"]) - launched
        return {"up_s": up, "first_s": first, **ready}


# ---- report --------------------------------------------------------------------------
def _row(label: str, get: Callable[[dict[str, Any]], float], fmt: str, results: list[Any]) -> str:
    cells = [format(get(r), fmt) if isinstance(r, dict) else "-" for r in results]
    return f"{label:<34}" + "".join(f"{c:>14}" for c in cells)


def report(ours: dict[str, Any], go: dict[str, Any] | str) -> bool:
    results = [ours, go]
    print(f"{'':<34}{'weavenet':>14}{'Go 2.8.1':>14}")
    print(_row("launch to HTTP API up (s)", lambda r: r["up_s"], ".3f", results))
    print(_row("launch to first allocation (s)", lambda r: r["first_s"], ".3f", results))
    for mode in ("sequential", "concurrent"):
        name = "1 client" if mode == "sequential" else "8 clients"
        print(_row(f"{name}: allocations/s", lambda r, m=mode: r[m]["rate"], ".0f", results))
        print(_row(f"{name}: p50 (ms)", lambda r, m=mode: r[m]["p50_ms"], ".2f", results))
        print(_row(f"{name}: p99 (ms)", lambda r, m=mode: r[m]["p99_ms"], ".2f", results))
    if isinstance(go, str):
        print(f"(Go column skipped: {go})")
    par = ours["concurrent"]
    met = par["rate"] >= TARGET_RATE and par["p99_ms"] <= TARGET_P99_MS
    met = met and ours["first_s"] <= TARGET_FIRST_S
    print(
        f"targets: >= {TARGET_RATE:.0f}/s and p99 <= {TARGET_P99_MS:.0f} ms with 8 clients,"
        f" first allocation <= {TARGET_FIRST_S:.0f} s: {'met' if met else 'MISSED'}"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=4000, help="allocations per mode")
    parser.add_argument("--no-go", action="store_true", help="skip the Go weaver")
    parser.add_argument(
        "--state-root", default=None, help="where the state dirs go (default: $TMPDIR or /tmp)"
    )
    parser.add_argument("--client", nargs=2, metavar=("ADDR", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--first", metavar="ADDR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:  # inside a namespace: measure and print JSON
        print(json.dumps(measure_ready_ring(args.client[0], int(args.client[1]))))
        return 0
    if args.first:
        up, first = first_allocation(args.first, 90.0)
        print(json.dumps({"up": up, "at": first}))
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ipam-", dir=args.state_root) as tmp:
            ours = run_weavenet(Path(tmp) / "weavenet", args.count)
            go = "--no-go given" if args.no_go else run_go(args.count, Path(tmp))
    except BenchError as exc:
        print(f"bench-ipam: {exc}", file=sys.stderr)
        return 2
    return 0 if report(ours, go) else 1


if __name__ == "__main__":
    sys.exit(main())
