"""CNI plugin run time (`make bench-cni`): what one pod start / stop costs in our plugin.

One host namespace with a router; for N fresh container namespaces, the wall time of
`weave-net` VERSION, ADD and DEL (the plugin process from exec to exit, started with
`nsenter --net`, as a runtime would in its own namespace), next to the reference Go
plugins `bridge` + `host-local` doing the same ADD / DEL, and a bare `true` (the cost of
starting any process that way). Medians and p90 of the wall time, and the median CPU
time (user + system, of the plugin process and its children), in milliseconds: on a busy
machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from weavenet.harness import Cluster, Host, random_prefix, venv_bin

REFERENCE = Path("/usr/lib/cni")


Sample = tuple[float, float]  # wall ms, CPU ms


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def timed(argv: list[str], env: dict[str, str], stdin: str) -> Sample:
    cpu, start = _cpu(), time.perf_counter()
    proc = subprocess.run(argv, input=stdin.encode(), env=env, capture_output=True, check=False)
    took = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{argv[-1]} failed: {proc.stdout.decode()} {proc.stderr.decode()}")
    return took, _cpu() - cpu


def cni_env(host: Host, command: str, ident: str, netns: str) -> dict[str, str]:
    return {
        **host.env,
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": ident,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(REFERENCE),
    }


def measure(host: Host, plugin: str, conf: dict[str, object], runs: int) -> dict[str, list[Sample]]:
    exec_in = ["nsenter", f"--net=/run/netns/{host.netns}"]
    times: dict[str, list[Sample]] = {"ADD": [], "DEL": [], "VERSION": []}
    for n in range(runs):
        box = host.add_container(f"b{plugin[-3:]}{n}")
        netns, ident = f"/run/netns/{box.netns}", f"bench{n}{plugin[-3:]}"
        for command in ("VERSION", "ADD", "DEL"):
            env = cni_env(host, command, ident, netns)
            times[command].append(timed([*exec_in, plugin], env, json.dumps(conf)))
        host.remove_container(box.name)
    times["true"] = [timed([*exec_in, "true"], host.env, "") for _ in range(runs)]
    return times


def row(name: str, samples: list[Sample]) -> str:
    wall = sorted(w for w, _ in samples)
    p90 = wall[min(len(wall) - 1, int(len(wall) * 0.9))]
    cpu = statistics.median(c for _, c in samples)
    return f"| {name} | {statistics.median(wall):.1f} | {p90:.1f} | {cpu:.1f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with Cluster(1, prefix="cn" + random_prefix()) as cluster:
        host = cluster.hosts[0]
        host.launch("--no-discovery")
        ours = measure(
            host,
            str(venv_bin() / "weave-net"),
            {"cniVersion": "1.0.0", "name": "weave", "type": "weave-net"},
            args.runs,
        )
        data_dir = cluster.tmpdir / "host-local"
        ref_conf = {
            "cniVersion": "1.0.0",
            "name": "ref",
            "type": "bridge",
            "bridge": "cnref0",
            "isGateway": True,
            "ipam": {"type": "host-local", "subnet": "10.99.0.0/16", "dataDir": str(data_dir)},
        }
        ref = measure(host, str(REFERENCE / "bridge"), ref_conf, args.runs)
    print(f"CNI plugin wall time, ms ({args.runs} runs each)\n")
    print("| operation | wall median | wall p90 | CPU median |\n| --- | --- | --- | --- |")
    for command in ("VERSION", "ADD", "DEL"):
        print(row(f"weave-net {command}", ours[command]))
    for command in ("ADD", "DEL"):
        print(row(f"bridge + host-local {command}", ref[command]))
    print(row("`true` (process start via nsenter)", ours["true"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
