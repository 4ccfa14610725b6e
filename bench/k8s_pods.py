"""Pod creation to Running on a real Kubernetes cluster (`make bench-k8s`, issue 11 item 7).

One cluster (weavenet.harness.k8s), two nodes: node 1 with our `weave-net` plugin (its agent
and router running as the DaemonSet's container would), node 2 with the reference `bridge` +
`host-local` plugins. N busybox pods (imagePullPolicy Never) are created one after another on
each node; for each, the time from the API's answer to the create until the API shows it
Running with an IP (polled every 20 ms). Reported: median and p90 per plugin, and our
overhead (median difference). Target: overhead <= 200 ms.
Exit status: 0 target met, 1 missed, 2 the run failed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from weavenet.cni.trace import TRACE_ENV
from weavenet.harness.k8s import K8sCluster, missing_reason
from weavenet.harness.k8s_weave import Deployment, pod_manifest

TARGET_OVERHEAD_MS = 200.0


def bridge_conflist() -> dict[str, Any]:
    return {
        "cniVersion": "0.4.0",
        "name": "bridge",
        "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
                     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/24"}]]}},
                    {"type": "portmap", "capabilities": {"portMappings": True}}],
    }  # fmt: skip


def time_to_running(dep: Deployment, namespace: str, name: str, node: str) -> float:
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    dep.api.create(pod_manifest(name, node, namespace))
    start = time.monotonic()
    deadline = start + 120
    while time.monotonic() < deadline:
        status = dep.api.get(path).get("status", {})
        if status.get("phase") == "Running" and status.get("podIP"):
            return time.monotonic() - start
        time.sleep(0.02)
    raise TimeoutError(f"pod {name} not Running after 120 s")


def measure(dep: Deployment, namespace: str, node: str, label: str, n: int) -> list[float]:
    times = []
    for i in range(n):
        times.append(time_to_running(dep, namespace, f"{label}-{i}", node))
        dep.api.delete(f"/api/v1/namespaces/{namespace}/pods/{label}-{i}")
    return times


def summary(label: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"| {label} | {len(ms)} | {statistics.median(ms):.0f} | {p90:.0f} | {ms[0]:.0f} |"


def run(n: int, trace: Path | None) -> int:
    with K8sCluster(2) as k8s:
        if trace is not None:  # containerd passes its environment to the plugin
            k8s.nodes[0].host.env[TRACE_ENV] = str(trace.resolve())
        dep = Deployment(k8s)
        namespace = k8s.prefix
        dep.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        dep.join(0)
        k8s.start_node(1, bridge_conflist(), [])
        k8s.wait_ready(k8s.nodes[1].name, timeout=180)
        measure(dep, namespace, k8s.nodes[0].name, "warm-weave", 2)
        measure(dep, namespace, k8s.nodes[1].name, "warm-bridge", 2)
        ours = measure(dep, namespace, k8s.nodes[0].name, "weave", n)
        ref = measure(dep, namespace, k8s.nodes[1].name, "bridge", n)
        dep.close()
    overhead = (statistics.median(ours) - statistics.median(ref)) * 1000
    print("| plugin | pods | median ms | p90 ms | min ms |\n| --- | --- | --- | --- | --- |")
    print(summary("weave-net (weavenet IPAM)", ours))
    print(summary("bridge + host-local", ref))
    print(f"overhead of weave-net (median difference): {overhead:.0f} ms "
          f"(target <= {TARGET_OVERHEAD_MS:.0f} ms)")  # fmt: skip
    if trace is not None:
        print(trace_summary(trace))
    return 0 if overhead <= TARGET_OVERHEAD_MS else 1


def trace_summary(path: Path) -> str:
    """Per command: runs, runs per container, and median start-up, run time and CPU."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        runs.setdefault(str(record.get("command")), []).append(record)
    out = ["| command | runs | containers | failed | start-up ms | run ms | CPU ms |",
           "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for command, records in sorted(runs.items()):
        med = {k: statistics.median(r.get(k) or 0 for r in records)
               for k in ("startup_ms", "total_ms", "cpu_ms")}  # fmt: skip
        containers = len({r.get("container") for r in records})
        failed = sum(1 for r in records if r.get("status"))
        times = " | ".join(f"{med[k]:.0f}" for k in ("startup_ms", "total_ms", "cpu_ms"))
        out.append(f"| {command} | {len(records)} | {containers} | {failed} | {times} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="pods per plugin (default 20)")
    parser.add_argument(
        "--trace", type=Path, help=f"append the plugin's phase timings here ({TRACE_ENV})"
    )
    args = parser.parse_args()
    reason = missing_reason()
    if reason:
        print(f"bench-k8s: {reason}", file=sys.stderr)
        return 2
    return run(args.n, args.trace)


if __name__ == "__main__":
    sys.exit(main())
