"""fastdp benchmark (`make bench-fastdp`): the kernel paths side by side, in one run.

Two emulated 2-host LANs (weavenet.harness.Cluster, nothing in the root namespace) live
at once; every round measures each path in turn, so the machine's mood affects them all:

  underlay  h1 -> h2 over the raw veth/bridge LAN
  kvxlan    a hand-made kernel VXLAN between two containers (bridge + vxlan, UDP 4789,
            nolearning + static fdb, MTU 1376): the limit of the fastdp design
  fastdp    container -> container through our routers' fastdp (default `weave launch`)
  sleeve    the same through our Weave-compatible sleeve
            (`weave launch --no-fastdp --no-fast-sleeve`)

iperf3 TCP with 1 and 4 streams (medians of --runs), ping p50/p99. Targets: fastdp at
least 90 % of kvxlan (1 stream) and its ping p50 within 1.2 times kvxlan's. Exit status:
0 targets met, 1 missed, 2 the run failed.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
from pathlib import Path
from typing import Any

from sleeve import IPERF_PORT as PORT
from sleeve import (
    BenchError,
    _container,
    _sigterm,
    ping_rtts,
    preflight,
    progress,
    start_iperf_server,
)

from weavenet.harness import Cluster, CommandError, CommandTimeout, Container, Host, wait_until
from weavenet.harness.mesh import wait_for_mesh

PATHS = ("underlay", "kvxlan", "fastdp", "sleeve")
KV_IPS = ("10.9.0.1", "10.9.0.2")


def iperf(src: Host | Container, dst_ip: str, seconds: float, streams: int) -> float:
    argv = ["iperf3", "-c", dst_ip, "-p", str(PORT), "-t", f"{seconds:g}", "-P", str(streams)]
    proc = src.run([*argv, "-J"], check=False, timeout=seconds + 60)
    try:
        data = json.loads(proc.stdout)
        return float(data["end"]["sum_received"]["bits_per_second"]) / 1e6
    except (json.JSONDecodeError, KeyError) as exc:
        raise BenchError(
            f"iperf3 from {src.netns} to {dst_ip} failed: {proc.stdout[-300:]}"
        ) from exc


def hand_made_vxlan(cluster: Cluster) -> tuple[Container, str]:
    """Container kv on each host behind a bridge with a static-fdb kernel VXLAN port."""
    ends = []
    for i, host in enumerate(cluster.hosts):
        peer = cluster.hosts[1 - i]
        kv = host.add_container("kv")
        script = [
            "ip link add kvbr type bridge",
            "ip link set kvbr up",
            f"ip link add kvx type vxlan id 42 dstport 4789 local {host.ip} nolearning",
            "ip link set kvx mtu 1376 master kvbr up",
            f"bridge fdb append 00:00:00:00:00:00 dev kvx dst {peer.ip}",
            "ip link add kvh mtu 1376 type veth peer name kvc mtu 1376",
            "ip link set kvh master kvbr up",
            f"ip link set kvc netns {kv.netns}",
        ]
        for line in script:
            host.run(line.split())
        kv.run(["ip", "addr", "add", f"{KV_IPS[i]}/24", "dev", "kvc"])
        kv.run(["ip", "link", "set", "kvc", "up"])
        ends.append(kv)
    start_iperf_server(cluster, ends[1])
    wait_until(lambda: ends[0].ping(KV_IPS[1], timeout=1.0), timeout=20, message="kvxlan ping")
    return ends[0], KV_IPS[1]


def overlay(cluster: Cluster, *flags: str, want: str) -> tuple[Container, str]:
    h1, h2 = cluster.hosts
    h1.launch(*flags)
    h2.launch(*flags, h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=30)
    wait_until(
        lambda: all(f"established {want}" in h.weave("status", "connections").stdout
                    for h in (h1, h2)),
        timeout=40,
        message=f"{want} on both hosts",
    )  # fmt: skip
    a = _container(h1, "a", "10.2.1.1/24")
    b = _container(h2, "b", "10.2.1.2/24")
    wait_until(lambda: a.ping("10.2.1.2", timeout=1.0), timeout=30, message="overlay ping")
    start_iperf_server(cluster, b)
    return a, "10.2.1.2"


def measure(args: argparse.Namespace, ends: dict[str, tuple[Host | Container, str]]) -> dict:
    runs: dict[str, dict[str, list[float]]] = {p: {"1": [], "4": []} for p in ends}
    for src, dst in ends.values():  # warm-up: ARP, MAC learning, fdb pins, PMTU
        iperf(src, dst, 1, 1)
    for rnd in range(args.runs):
        for path, (src, dst) in ends.items():
            for streams in (1, 4):
                mbps = iperf(src, dst, args.seconds, streams)
                runs[path][str(streams)].append(mbps)
                progress(f"round {rnd + 1} {path} P{streams}: {mbps:.0f} Mbit/s")
    result: dict[str, Any] = {}
    for path, (src, dst) in ends.items():
        rtts = sorted(ping_rtts(src, dst, args.pings))
        result[path] = {
            "mbps_1": statistics.median(runs[path]["1"]),
            "mbps_4": statistics.median(runs[path]["4"]),
            "ping_p50": statistics.median(rtts),
            "ping_p99": rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))],
            "runs": runs[path],
        }
    return result


def report(result: dict[str, Any]) -> bool:
    print(f"{'path':<10} {'1 stream':>12} {'4 streams':>12} {'ping p50':>10} {'ping p99':>10}")
    for path, r in result.items():
        print(
            f"{path:<10} {r['mbps_1']:>7.0f} Mbit/s {r['mbps_4']:>7.0f} Mbit/s "
            f"{r['ping_p50']:>7.3f} ms {r['ping_p99']:>7.3f} ms"
        )
    fast, kv = result["fastdp"], result["kvxlan"]
    ratio = fast["mbps_1"] / kv["mbps_1"]
    ratio4 = fast["mbps_4"] / kv["mbps_4"]
    ping = fast["ping_p50"] / kv["ping_p50"]
    print(f"fastdp / kvxlan: 1 stream {ratio:.2f}, 4 streams {ratio4:.2f} (target >= 0.90)")
    print(f"fastdp ping p50 / kvxlan: {ping:.2f} (target <= 1.20)")
    print(f"fastdp / sleeve: {fast['mbps_1'] / result['sleeve']['mbps_1']:.1f}x")
    return ratio >= 0.9 and ping <= 1.2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pings", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        preflight()
        with Cluster(2) as fast, Cluster(2) as slow:
            ends: dict[str, tuple[Host | Container, str]] = {}
            start_iperf_server(fast, fast.hosts[1])
            ends["underlay"] = (fast.hosts[0], fast.hosts[1].ip)
            ends["kvxlan"] = hand_made_vxlan(fast)
            ends["fastdp"] = overlay(fast, want="fastdp")
            ends["sleeve"] = overlay(slow, "--no-fastdp", "--no-fast-sleeve", want="sleeve")
            result = measure(args, ends)
    except (BenchError, CommandError, CommandTimeout, TimeoutError, OSError) as exc:
        print(f"\nbench-fastdp failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    ok = report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
