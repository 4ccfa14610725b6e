"""Docker container start-up through weave (`make bench-docker`, issue 9 acceptance 5).

One emulated host (weavenet.harness.docker: a real dockerd in its own namespaces) with a
router from `weave launch`. In one interleaved run, ROUNDS times each:

- direct:  `docker run --rm IMAGE true` against the daemon itself;
- proxy:   the same through the Docker API proxy (`eval $(weave env)`): the container gets
           an IPAM address, ethwe, its DNS name, and its command waits for the network;
- plugin:  the same with `--net=weave` against the daemon (the network plugin; "n/a" if
           this router has no plugin, i.e. no Docker network `weave`);
- bridge:  a reference, not weave: `--net` on a user-defined network of Docker's own
           `bridge` driver. Docker sets up every user-defined network's container the
           same way (its set-key hook, its embedded DNS with its iptables rules), so the
           plugin's overhead over *this* is what the weave plugin itself costs.

Reported: the median and p90 of each, and each way's median overhead over direct.
Target: each weave way's overhead <= 150 ms. Exit status: 0 met, 1 missed, 2 the run failed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from weavenet.harness.docker import (
    BUSYBOX_IMAGE,
    DockerCluster,
    DockerHost,
    docker_unusable_reason,
)

PROXY_SOCK = "unix:///var/run/weave/weave.sock"
REFERENCE_NET = "weavenet-bench-bridge"
REFERENCE_SUBNET = "10.250.0.0/24"  # the default bridge is off (--bridge=none)
TARGET_OVERHEAD_MS = 150.0


def timed_run(dh: DockerHost, docker_host: str, extra: tuple[str, ...]) -> float:
    start = time.perf_counter()
    dh.docker("run", "--rm", *extra, BUSYBOX_IMAGE, "true", env={"DOCKER_HOST": docker_host})
    return (time.perf_counter() - start) * 1000


def measure(dh: DockerHost, rounds: int) -> dict[str, list[float]]:
    ways: dict[str, tuple[str, tuple[str, ...]]] = {
        "direct": (dh.docker_host, ()),
        "proxy": (PROXY_SOCK, ()),
    }
    if dh.docker("network", "inspect", "weave", check=False).returncode == 0:
        ways["plugin"] = (dh.docker_host, ("--net=weave",))
    dh.docker("network", "create", "--driver", "bridge", "--subnet", REFERENCE_SUBNET,
              REFERENCE_NET)  # fmt: skip
    ways["bridge"] = (dh.docker_host, (f"--net={REFERENCE_NET}",))
    for docker_host, extra in ways.values():  # warm-up: image, IPAM ring, DNS listener
        timed_run(dh, docker_host, extra)
    times: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(rounds):
        for way, (docker_host, extra) in ways.items():
            times[way].append(timed_run(dh, docker_host, extra))
    return times


def report(times: dict[str, list[float]], rounds: int) -> bool:
    direct = statistics.median(times["direct"])
    print(f"`docker run --rm {BUSYBOX_IMAGE} true`, {rounds} interleaved rounds (ms):\n")
    print("| way | median | p90 | overhead over direct (median) |")
    print("| --- | --- | --- | --- |")
    ok = True
    for way in ("direct", "proxy", "plugin", "bridge"):
        if way not in times:
            print(f"| {way} | n/a | n/a | n/a (no Docker network `weave` on this router) |")
            continue
        samples = sorted(times[way])
        median, p90 = statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]
        over = median - direct
        verdict = "" if way == "direct" else f"{over:+.0f}"
        if way == "plugin":
            verdict += f" ({median - statistics.median(times['bridge']):+.0f} over bridge)"
        if way == "bridge":
            verdict += " (reference: Docker's own driver, no target)"
        elif way != "direct" and over > TARGET_OVERHEAD_MS:
            ok = False
            verdict += f" (target <= {TARGET_OVERHEAD_MS:.0f}: MISSED)"
        print(f"| {way} | {median:.0f} | {p90:.0f} | {verdict} |")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    reason = docker_unusable_reason()
    if reason is not None:
        print(f"bench-docker: cannot run: {reason}", file=sys.stderr)
        return 2
    cluster = DockerCluster(1, prefix=None)
    try:
        cluster.start()
        (dh,) = cluster.docker_hosts
        dh.launch()
        times = measure(dh, args.rounds)
    except Exception as exc:
        print(f"bench-docker: run failed: {exc}", file=sys.stderr)
        return 2
    finally:
        cluster.close()
    return 0 if report(times, args.rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
