"""Data-plane benchmark for the sleeve overlay (`make bench-sleeve`).

Builds a 2-host emulated LAN with the namespace harness (weavenet.harness.Cluster; nothing
is configured in the root namespace) and measures, with iperf3, one TCP stream for
--seconds per run, --runs runs per path (medians reported), plus the idle ping latency:

  underlay   h1 -> h2 over the raw veth/bridge LAN (no router running)
  plain      container a (on h1) -> container b (on h2) over the sleeve overlay
  encrypted  the same with `weave launch --password ...` (NaCl per UDP packet)

Each overlay path gets a fresh cluster: `weave launch` on both hosts, h2 pointed at h1,
wait for an established sleeve connection with a discovered MTU, attach one container
per host in 10.2.1.0/24 (as `weave attach` does), warm up with a short iperf3 run (PMTU
discovery), then measure. Router CPU (utime+stime of each weaver) is sampled over every
measured run.

Targets: plain >= 800 Mbit/s, encrypted >= 350 Mbit/s (the Go weaver 2.8 reaches ~440
and ~300 on this machine kind). Exit status: 0 all targets met, 1 a target missed,
2 the run failed.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from sleeve_report import PATHS, BenchError, build_result, print_result

from weavenet.dataplane import attach, resolve_container
from weavenet.harness import Cluster, CommandError, CommandTimeout, Container, Host, wait_until
from weavenet.harness.mesh import wait_for_mesh

CLK_TCK = os.sysconf("SC_CLK_TCK")
IPERF_PORT = 5201
SUBNET_CIDRS = ("10.2.1.1/24", "10.2.1.2/24")
_PING_TIME = re.compile(r"time[=<]([\d.]+) ms")


# ---- helpers -------------------------------------------------------------------------
def progress(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def _spawn(cluster: Cluster, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A background process (already wrapped in `ip netns exec`), killed at teardown."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    cluster.procs.append(proc)
    return proc


def start_iperf_server(cluster: Cluster, where: Host | Container) -> subprocess.Popen[bytes]:
    log = cluster.tmpdir / f"iperf3-server-{where.netns}.log"
    proc = _spawn(cluster, where.exec_argv(["iperf3", "-s", "-p", str(IPERF_PORT)]), log)

    def listening() -> bool:
        if proc.poll() is not None:
            raise BenchError(f"iperf3 server in {where.netns} exited: {log.read_text()}")
        out = where.run(["ss", "-Hltn", f"sport = :{IPERF_PORT}"], check=False).stdout
        return bool(out.strip())

    wait_until(listening, timeout=10, interval=0.05, message=f"iperf3 -s in {where.netns}")
    return proc


def iperf_run(src: Host | Container, dst_ip: str, seconds: float) -> dict[str, Any]:
    """One single-stream TCP run; returns Mbit/s at the receiver, retransmits, CPU."""
    argv = ["iperf3", "-c", dst_ip, "-p", str(IPERF_PORT), "-t", f"{seconds:g}", "-J"]
    proc = src.run(argv, check=False, timeout=seconds + 60)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        data = {}
    if proc.returncode != 0 or "error" in data or "end" not in data:
        reason = data.get("error") or proc.stderr.strip() or proc.stdout[-500:]
        raise BenchError(f"iperf3 -c {dst_ip} from {src.netns} failed: {reason}")
    end = data["end"]
    return {
        "mbps": end["sum_received"]["bits_per_second"] / 1e6,
        "sender_mbps": end["sum_sent"]["bits_per_second"] / 1e6,
        "retransmits": end["sum_sent"].get("retransmits", 0),
        "client_cpu_pct": end.get("cpu_utilization_percent", {}).get("host_total", 0.0),
    }


def ping_rtts(src: Host | Container, dst_ip: str, count: int) -> list[float]:
    """RTTs in ms of `count` echo requests 50 ms apart (with the weavenet ping as fallback)."""
    if shutil.which("ping"):
        argv = ["ping", "-n", "-c", str(count), "-i", "0.05", "-W", "2", dst_ip]
    else:
        argv = [sys.executable, "-m", "weavenet.harness.ping", "-c", str(count), dst_ip]
    proc = src.run(argv, check=False, timeout=count * 2 + 30)
    rtts = [float(m) for m in _PING_TIME.findall(proc.stdout)]
    if not rtts:
        raise BenchError(f"no ping reply from {dst_ip} in {src.netns}:\n{proc.stdout}")
    return rtts


def measure_path(
    name: str,
    src: Host | Container,
    dst_ip: str,
    routers: Sequence[Host],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Warm-up, then --runs iperf3 runs and one ping series."""
    pids = {h.name: h.router_pid() for h in routers}
    if any(pid is None for pid in pids.values()):
        raise BenchError(f"{name}: a router is not running: {pids}")
    rtts = ping_rtts(src, dst_ip, args.pings)
    iperf_run(src, dst_ip, args.warmup)  # PMTU discovery, slow start, MAC learning
    runs = []
    for i in range(args.runs):
        before = {h: cpu_ticks(p) for h, p in pids.items() if p is not None}
        start = time.monotonic()
        run = iperf_run(src, dst_ip, args.seconds)
        elapsed = time.monotonic() - start
        for h, p in pids.items():
            if p is not None:
                run[f"cpu_pct_{h}"] = 100.0 * (cpu_ticks(p) - before[h]) / CLK_TCK / elapsed
        runs.append(run)
        progress(f"  {name} run {i + 1}/{args.runs}: {run['mbps']:.0f} Mbit/s")
    return {"runs": runs, "ping_ms": rtts}


def _container(host: Host, name: str, cidr: str) -> Container:
    container = host.add_container(name)
    ref = resolve_container(f"netns:{container.netns}", netns=host.netns)
    attach(ref, [ipaddress.IPv4Interface(cidr)], netns=host.netns)
    return container


def _connections(host: Host) -> str:
    return host.weave("status", "connections").stdout


def overlay_cluster(cluster: Cluster, password: str | None) -> tuple[Container, str]:
    """Launch both routers, wait for the sleeve, attach a container on each host."""
    h1, h2 = cluster.hosts
    extra = ["--no-fastdp", "--no-fast-sleeve", *(["--password", password] if password else [])]
    h1.launch(*extra)
    h2.launch(*extra, h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=30)
    want = "encrypted   sleeve" if password else "sleeve"
    wait_until(
        lambda: all(want in _connections(h) and "mtu=" in _connections(h) for h in (h1, h2)),
        timeout=30,
        message="sleeve established with a discovered MTU on both hosts",
        describe=lambda: _connections(h1),
    )
    a = _container(h1, "a", SUBNET_CIDRS[0])
    b = _container(h2, "b", SUBNET_CIDRS[1])
    dst_ip = SUBNET_CIDRS[1].split("/")[0]
    wait_until(lambda: a.ping(dst_ip, timeout=1.0), timeout=30, message=f"ping {dst_ip}")
    start_iperf_server(cluster, b)
    return a, dst_ip


def with_cluster(fn: Callable[[Cluster], dict[str, Any]]) -> dict[str, Any]:
    with Cluster(2) as cluster:
        try:
            return fn(cluster)
        except Exception:
            for host in cluster.hosts:  # keep the evidence before teardown removes it
                tail = host.log().splitlines()[-40:]
                if tail:
                    progress(f"--- {host.name} weaver.log (last {len(tail)} lines) ---")
                    progress("\n".join(tail))
            raise


def bench_underlay(args: argparse.Namespace) -> dict[str, Any]:
    def run(cluster: Cluster) -> dict[str, Any]:
        h1, h2 = cluster.hosts
        start_iperf_server(cluster, h2)
        return measure_path("underlay", h1, h2.ip, [], args)

    return with_cluster(run)


def bench_overlay(args: argparse.Namespace, password: str | None) -> dict[str, Any]:
    name = "encrypted" if password else "plain"

    def run(cluster: Cluster) -> dict[str, Any]:
        a, dst_ip = overlay_cluster(cluster, password)
        result = measure_path(name, a, dst_ip, cluster.hosts, args)
        result["connection"] = _connections(cluster.hosts[0]).strip()
        return result

    return with_cluster(run)


# ---- main ----------------------------------------------------------------------------
def preflight() -> None:
    if os.geteuid() != 0:
        raise BenchError("needs root (network namespaces)")
    for tool in ("iperf3", "ip", "ss"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found (`make bench-sleeve` installs iperf3)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="iperf3 runs per path (median)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one iperf3 run")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed iperf3 run first, s")
    parser.add_argument("--pings", type=int, default=20, help="echo requests per path")
    parser.add_argument("--password", default="s3cret-bench", help="for the encrypted path")
    parser.add_argument(
        "--paths", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)}"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.paths = [p for p in args.paths.split(",") if p]
    if not args.paths or any(p not in PATHS for p in args.paths):
        parser.error(f"--paths must name some of {', '.join(PATHS)}")
    if args.runs < 1 or args.seconds <= 0 or args.pings < 1:
        parser.error("--runs, --seconds and --pings must be positive")
    return args


_MAIN_PID = os.getpid()


def _sigterm(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _MAIN_PID:
        # A forked helper: pyroute2 forks to open sockets in other namespaces and SIGTERMs
        # the child when done. Unwinding our stack there would tear down the cluster.
        os._exit(128 + signum)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    measured: dict[str, dict[str, Any]] = {}
    benches = {
        "underlay": lambda: bench_underlay(args),
        "plain": lambda: bench_overlay(args, None),
        "encrypted": lambda: bench_overlay(args, args.password),
    }
    try:
        preflight()
        for path in args.paths:
            progress(f"{path}: {PATHS[path]}")
            measured[path] = benches[path]()
    except (BenchError, CommandError, CommandTimeout, TimeoutError, OSError) as exc:
        print(f"\nbench-sleeve failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    result = build_result(vars(args), measured)
    print_result(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(result["pass"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
