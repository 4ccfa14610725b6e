"""Start-up benchmark (`make bench-startup`): the CPU and time from `weave launch` (default
flags: the weave bridge, fastdp, fast sleeve, sleeve, IPAM, DNS, the proxy) to the router
answering /status, one router alone in its own host namespace, --runs times.

Counted (CPU-seconds, which a busy machine disturbs less than wall time):
- the `weave` CLI process and every child it waited for (wait4 rusage);
- the router from its /proc stat: its own utime+stime plus cutime+cstime (the children it
  waited for: ip, nft, sysctl, modprobe...), read right after `weave launch` returned.
A forked router's counters start at zero at the fork, so nothing is counted twice.
With --strace, the first run is traced (strace -f) to count the programs exec'd on the way.

Like bench/scale.py, weavenet is byte-compiled first (as an installed package is).
"""

from __future__ import annotations

import argparse
import compileall
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from netbench import CLK_TCK
from scale import compile_weavenet

from weavenet.harness.netns import Cluster, Host
from weavenet.harness.util import venv_bin


def router_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of `pid` (its own and its reaped children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / CLK_TCK


def proxy_socket(host: Host) -> list[str]:
    """The proxy stays on (weave launch's default) but listens in this run's temp dir:
    the hosts share the machine's /var/run/weave with everyone else's tests."""
    return ["-H", f"unix://{host.cluster.tmpdir}/su-{host.name}-proxy.sock"]


def _spawn(host: Host, argv: list[str], out: Path) -> subprocess.Popen[bytes]:
    host.launched = True
    with out.open("wb") as f:
        return subprocess.Popen(
            host.exec_argv(argv),
            env=host.env,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _failed(host: Host, out: Path) -> RuntimeError:
    tail = out.read_text()[-1500:]
    return RuntimeError(f"weave launch failed on {host.name}:\n{tail}\n{host.log()[-1500:]}")


def weave_argv(src: Path | None) -> list[str]:
    """The `weave` CLI: the venv's, or (--baseline) the one of another source tree."""
    if src is None:
        return [str(venv_bin() / "weave")]
    # as the `weave` console script does (-m weavenet.cli.main would leave out its entry)
    entry = "from weavenet.cli.entry import main; main()"
    return ["env", f"PYTHONPATH={src}", sys.executable, "-c", entry]


def launch_once(host: Host, src: Path | None = None) -> dict[str, float]:
    argv = [*weave_argv(src), "launch", "--nickname", host.name, *proxy_socket(host)]
    out = host.cluster.tmpdir / f"su-launch-{host.name}.log"
    started = time.monotonic()
    proc = _spawn(host, argv, out)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    pid = host.router_pid()
    if os.waitstatus_to_exitcode(status) != 0 or pid is None:
        raise _failed(host, out)
    cli = usage.ru_utime + usage.ru_stime
    router = router_cpu_seconds(pid)
    stop_router(host, pid)
    return {"wall_s": wall, "cli_cpu_s": cli, "router_cpu_s": router, "total_cpu_s": cli + router}


def traced_launch(host: Host, trace: Path) -> dict[str, int]:
    """`weave launch` under strace -f; strace follows the router too, so the launch is
    done when the CLI prints the router's pid, and the trace ends when the router stops."""
    argv = ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace)]
    argv += [str(venv_bin() / "weave"), "launch", "--nickname", host.name, *proxy_socket(host)]
    out = host.cluster.tmpdir / f"su-launch-{host.name}.log"
    proc = _spawn(host, argv, out)
    deadline = time.monotonic() + 60
    while not _printed_pid(out):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise _failed(host, out)
        time.sleep(0.1)
    pid = host.router_pid()
    if pid is None:
        raise _failed(host, out)
    stop_router(host, pid)
    proc.wait(timeout=30)
    return count_execs(trace)


def _printed_pid(out: Path) -> bool:
    words = out.read_text().split()
    return bool(words) and words[-1].isdigit()


def stop_router(host: Host, pid: int) -> None:
    if host.owns_pid(pid):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while host.router_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    host.launched = host.router_pid() is not None


def count_execs(trace: Path) -> dict[str, int]:
    """Programs exec'd (a failed PATH candidate, '= -1 ENOENT', is not a run)."""
    counts: dict[str, int] = {}
    for line in trace.read_text().splitlines():
        if 'execve("' in line and " = -1 " not in line:
            name = Path(line.split('execve("', 1)[1].split('"', 1)[0]).name
            counts[name] = counts.get(name, 0) + 1
    return counts


def summary(label: str, rows: list[dict[str, float]]) -> None:
    print(f"{label}, {len(rows)} runs: median [min, max]")
    for key in ("cli_cpu_s", "router_cpu_s", "total_cpu_s", "wall_s"):
        values = [r[key] for r in rows]
        print(f"  {key:13} {statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="launches, one after another")
    parser.add_argument("--strace", action="store_true", help="one more run, traced")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a src/ dir of another version (e.g. `git archive`d): its launches alternate "
        "with this tree's, so that both see the same machine load",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench-startup: needs root (network namespaces)", file=sys.stderr)
        return 2
    compile_weavenet()
    kinds: list[Path | None] = [None] if args.baseline is None else [args.baseline, None]
    if args.baseline is not None:
        compileall.compile_dir(str(args.baseline / "weavenet"), quiet=1)
    rows: dict[Path | None, list[dict[str, float]]] = {kind: [] for kind in kinds}
    prefix = "su" + secrets.token_hex(2)
    underlay = f"10.198.{secrets.randbelow(250)}.0/24"
    n_hosts = args.runs * len(kinds) + args.strace
    with Cluster(n_hosts, prefix=prefix, underlay=underlay) as cl:
        hosts = list(cl.hosts)
        if args.strace:
            execs = traced_launch(hosts.pop(0), cl.tmpdir / "su-strace.txt")
            print("programs exec'd from `weave launch` to /status ready (traced run):")
            for name, count in sorted(execs.items()):
                print(f"  {name:16} {count}")
        for i, host in enumerate(hosts):
            kind = kinds[i % len(kinds)]
            row = launch_once(host, kind)
            rows[kind].append(row)
            label = "this tree" if kind is None else str(kind)
            print(label, " ".join(f"{k}={v:.3f}" for k, v in row.items()), flush=True)
    for kind, got in rows.items():
        if got:
            summary("this tree" if kind is None else f"baseline {kind}", got)
    return 0


if __name__ == "__main__":
    sys.exit(main())
