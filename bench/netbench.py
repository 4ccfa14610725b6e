"""Measuring tools shared by the data-plane benchmarks: iperf3, ping, router CPU and RSS.

Everything runs inside namespaces of a weavenet.harness.Cluster; background processes are
registered with the cluster, so its teardown ends them (by PID) even when a run fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from weavenet.harness import Cluster, Container, Host, wait_until

CLK_TCK = os.sysconf("SC_CLK_TCK")
IPERF_PORT = 5201
_PING_TIME = re.compile(r"time[=<]([\d.]+) ms")
_MAIN_PID = os.getpid()


class BenchError(RuntimeError):
    """The run itself failed (not merely missed a target)."""


def progress(text: str, final: bool = True) -> None:
    """A progress line on stderr; one that is not ``final`` is only shown on a terminal,
    and the next line overwrites it."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + text + ("\n" if final else ""))
    elif final:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


# ---- router processes -----------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` so far, in seconds (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    """VmHWM of process `pid`: the most resident memory it has had, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmHWM in /proc/{pid}/status")


# ---- iperf3 ---------------------------------------------------------------------------
def start_iperf_server(cluster: Cluster, where: Host | Container) -> subprocess.Popen[bytes]:
    """`iperf3 -s` in `where`, killed at the cluster's teardown; returns once it listens."""
    log = cluster.tmpdir / f"iperf3-server-{where.netns}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            where.exec_argv(["iperf3", "-s", "-p", str(IPERF_PORT)]),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    cluster.procs.append(proc)

    def listening() -> bool:
        if proc.poll() is not None:
            raise BenchError(f"iperf3 server in {where.netns} exited: {log.read_text()}")
        out = where.run(["ss", "-Hltn", f"sport = :{IPERF_PORT}"], check=False).stdout
        return bool(out.strip())

    wait_until(listening, timeout=10, interval=0.05, message=f"iperf3 -s in {where.netns}")
    return proc


def iperf(src: Host | Container, dst_ip: str, seconds: float, streams: int = 1) -> dict[str, Any]:
    """One TCP run of `streams` parallel streams: Mbit/s and Gbit at the receiver."""
    argv = ["iperf3", "-c", dst_ip, "-p", str(IPERF_PORT), "-t", f"{seconds:g}"]
    argv += ["-P", str(streams), "-J"]
    proc = src.run(argv, check=False, timeout=seconds + 60)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        data = {}
    if proc.returncode != 0 or "error" in data or "end" not in data:
        reason = data.get("error") or proc.stderr.strip() or proc.stdout[-300:]
        raise BenchError(f"iperf3 -c {dst_ip} from {src.netns} failed: {reason}")
    received = data["end"]["sum_received"]
    return {
        "mbps": float(received["bits_per_second"]) / 1e6,
        "gbit": float(received["bytes"]) * 8 / 1e9,
        "retransmits": int(data["end"]["sum_sent"].get("retransmits", 0)),
    }


# ---- ping -----------------------------------------------------------------------------
def ping_rtts(
    src: Host | Container, dst_ip: str, count: int, interval: float = 0.05
) -> list[float]:
    """RTTs in ms of `count` echo requests `interval` s apart (iputils ping, or ours)."""
    if shutil.which("ping"):
        argv = ["ping", "-n", "-c", str(count)]
        argv += ["-i", f"{interval:g}", "-W", "2", dst_ip]
    else:
        argv = [sys.executable, "-m", "weavenet.harness.ping", "-c", str(count), dst_ip]
    proc = src.run(argv, check=False, timeout=count * (interval + 2) + 30)
    rtts = [float(m) for m in _PING_TIME.findall(proc.stdout)]
    if not rtts:
        raise BenchError(f"no ping reply from {dst_ip} in {src.netns}:\n{proc.stdout[-500:]}")
    return rtts


# ---- the process ----------------------------------------------------------------------
def preflight(tools: tuple[str, ...] = ("iperf3", "ip", "ss")) -> None:
    if os.geteuid() != 0:
        raise BenchError("needs root (network namespaces)")
    for tool in tools:
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found (`make bench` installs iperf3)")


def _sigterm(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _MAIN_PID:
        # A forked helper: pyroute2 forks to open sockets in other namespaces and SIGTERMs
        # the child when done. Unwinding our stack there would tear down the cluster.
        os._exit(128 + signum)
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGTERM and SIGINT unwind the stack, so every Cluster's teardown runs."""
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
