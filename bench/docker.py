"""Docker container start-up through weave (`make bench-docker`, issue 9 acceptance 5).

One emulated host (weavenet.harness.docker: a real dockerd in its own namespaces) running
a *stock* daemon: Docker's defaults, its `docker0` bridge and its iptables rules, both
inside the host's network namespace, as on a Weave user's machine. A router from
`weave launch`. In one interleaved run, ROUNDS times each `docker run --rm IMAGE true`:

- direct:  against the daemon, no flags: the container is on docker0. THE BASELINE: what
           a Weave user's plain `docker run` costs; the target is judged against it;
- proxy:   the same through the Docker API proxy (`eval $(weave env)`): docker0 as
           before, plus an IPAM address, ethwe, its DNS name; its command waits for ethwe;
- plugin:  `--net=weave` against the daemon (the weavemesh plugin; "n/a" if this router
           has no plugin, i.e. no Docker network `weave`);
- none:    reference, `--net=none`: no network at all (what the earlier `--bridge=none`
           daemon's direct run measured);
- bridge:  reference, `--net` on a user-defined network of Docker's own `bridge` driver:
           Docker sets up every user-defined network's container alike (its embedded DNS
           server at 127.0.0.11: a `setup-resolver` re-exec and iptables rules in the
           container's namespace), so the plugin's overhead over *this* is its own cost.

Reported per way: median and p90 wall ms, median overhead over direct, and the mean CPU ms
per run (clock ticks: a mean resolves finer than a median) of dockerd + containerd (each
with its waited-for children, from /proc/<pid>/stat; not the shims and runc, which
containerd does not wait for) and of the router: CPU is disturbed less by a busy machine.
Target: each weave way's median overhead over direct <= 150 ms.
Exit status: 0 met, 1 missed, 2 the run failed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from weavenet.harness.docker import (
    BUSYBOX_IMAGE,
    DockerCluster,
    DockerHost,
    docker_unusable_reason,
)
from weavenet.harness.util import random_prefix

PROXY_SOCK = "unix:///var/run/weave/weave.sock"
REFERENCE_NET = "dbbench-bridge"
REFERENCE_SUBNET = "10.250.0.0/24"  # clear of docker0's 172.17.0.0/16 and weave's 10.32/12
TARGET_OVERHEAD_MS = 150.0
WEAVE_WAYS = ("proxy", "plugin")
ROWS = ("direct", "proxy", "plugin", "none", "bridge")
NOTES = {
    "direct": "baseline: stock daemon, docker0",
    "none": "reference: --net=none, no network",
    "bridge": "reference: Docker's own driver, user-defined network",
}
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid: int | None) -> float:
    """CPU time of `pid` and its waited-for children (utime stime cutime cstime), in ms."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) * 1000 / TICKS_PER_S


def child_pids(pid: int | None) -> list[int]:
    if pid is None:
        return []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in children]


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    daemon_cpu: list[float] = field(default_factory=list)
    router_cpu: list[float] = field(default_factory=list)


@dataclass
class Way:
    docker_host: str
    extra: tuple[str, ...]
    samples: Samples = field(default_factory=Samples)


def timed_run(dh: DockerHost, way: Way, daemon_pids: Callable[[], list[int]]) -> None:
    pids, router = daemon_pids(), dh.router_pid()
    daemon_before, router_before = sum(map(cpu_ms, pids)), cpu_ms(router)
    start = time.perf_counter()
    env = {"DOCKER_HOST": way.docker_host}
    dh.docker("run", "--rm", *way.extra, BUSYBOX_IMAGE, "true", env=env)
    wall = (time.perf_counter() - start) * 1000
    way.samples.wall.append(wall)
    way.samples.daemon_cpu.append(sum(map(cpu_ms, pids)) - daemon_before)
    way.samples.router_cpu.append(cpu_ms(router) - router_before)


def ways_of(dh: DockerHost) -> dict[str, Way]:
    ways = {"direct": Way(dh.docker_host, ()), "proxy": Way(PROXY_SOCK, ())}
    if dh.docker("network", "inspect", "weave", check=False).returncode == 0:
        ways["plugin"] = Way(dh.docker_host, ("--net=weave",))
    ways["none"] = Way(dh.docker_host, ("--net=none",))
    dh.docker("network", "create", "--driver", "bridge", "--subnet", REFERENCE_SUBNET,
              REFERENCE_NET)  # fmt: skip
    ways["bridge"] = Way(dh.docker_host, (f"--net={REFERENCE_NET}",))
    return ways


def measure(dh: DockerHost, rounds: int) -> dict[str, Way]:
    ways = ways_of(dh)

    def daemon_pids() -> list[int]:  # dockerd and the containerd it started
        pid = dh.daemon_pid()
        return [] if pid is None else [pid, *child_pids(pid)]

    for way in ways.values():  # warm-up: image, IPAM ring, DNS listener
        timed_run(dh, way, daemon_pids)
        way.samples = Samples()
    for _ in range(rounds):
        for way in ways.values():
            timed_run(dh, way, daemon_pids)
    return ways


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[int(0.9 * (len(ordered) - 1))]


def verdict(name: str, ways: dict[str, Way], direct: float) -> tuple[str, bool]:
    """The overhead column of `name`'s row, and whether it meets the target."""
    median = statistics.median(ways[name].samples.wall)
    if name == "direct":
        return NOTES[name], True
    text = f"{median - direct:+.0f}"
    if name == "plugin" and "bridge" in ways:
        text += f" ({median - statistics.median(ways['bridge'].samples.wall):+.0f} over bridge)"
    if name not in WEAVE_WAYS:
        return f"{text} ({NOTES[name]}, no target)", True
    met = median - direct <= TARGET_OVERHEAD_MS
    return f"{text} (target <= {TARGET_OVERHEAD_MS:.0f}: {'met' if met else 'MISSED'})", met


def report(ways: dict[str, Way], rounds: int) -> bool:
    direct = statistics.median(ways["direct"].samples.wall)
    print(f"`docker run --rm {BUSYBOX_IMAGE} true`, {rounds} interleaved rounds, a stock "
          "dockerd (docker0 + iptables in the host's netns).")  # fmt: skip
    print("The target (each weave way's median overhead <= 150 ms) is judged against the "
          "direct run on that stock daemon; none and bridge are references.\n")  # fmt: skip
    print("| way | median ms | p90 ms | overhead over direct (median) "
          "| dockerd+containerd CPU ms (mean) | router CPU ms (mean) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    ok = True
    for name in ROWS:
        if name not in ways:
            print(f"| {name} | n/a | n/a | n/a (no Docker network `weave` on this router) | | |")
            ok = ok and name not in WEAVE_WAYS
            continue
        s = ways[name].samples
        text, met = verdict(name, ways, direct)
        ok = ok and met
        cpu = f"{statistics.mean(s.daemon_cpu):.0f} | {statistics.mean(s.router_cpu):.0f}"
        print(f"| {name} | {statistics.median(s.wall):.0f} | {p90(s.wall):.0f} | {text} | {cpu} |")
    print(f"\ntarget {'met' if ok else 'MISSED'} (judged against the stock daemon's direct run)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    reason = docker_unusable_reason()
    if reason is not None:
        print(f"bench-docker: cannot run: {reason}", file=sys.stderr)
        return 2
    cluster = DockerCluster(1, prefix="db" + random_prefix(), stock_network=True)
    try:
        cluster.start()
        (dh,) = cluster.docker_hosts
        dh.launch()
        ways = measure(dh, args.rounds)
    except Exception as exc:
        print(f"bench-docker: run failed: {exc}", file=sys.stderr)
        return 2
    finally:
        cluster.close()
    return 0 if report(ways, args.rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
