"""What the overlays send per peer: N routers with the data plane (`weave launch` defaults:
fastdp, fast sleeve, sleeve) in harness namespaces, chain-started; once the mesh is full
and every connection is on fastdp, and again after a steady window, each router's UDP
bytes per overlay (``/report`` ``Router.SentBytes``) and the sleeve's control-frame bytes
per kind (``DatapathStats.sleeve_<kind>_bytes``), per peer.

    .venv/bin/python bench/overlay_peer.py [--hosts 6] [--steady 30]

The PMTU probe (60,000 bytes with DF) fails locally with EMSGSIZE: it is counted as
queued, never reaches the wire, and is left out of the sleeve's sent bytes.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from typing import Any

from weavenet.harness import Cluster, Host, random_prefix, wait_until
from weavenet.harness.containers import connections
from weavenet.harness.mesh import wait_for_mesh


def _on_fastdp(host: Host, peers: int) -> bool:
    lines = connections(host).splitlines()
    return sum(" fastdp " in f"{line} " and "established" in line for line in lines) >= peers


def _sample(hosts: list[Host]) -> dict[str, float]:
    """Mean over routers of each counter (bytes)."""
    rows: list[dict[str, float]] = []
    for host in hosts:
        router: dict[str, Any] = host.report()["Router"]
        row = {f"sent {k}": float(v) for k, v in router.get("SentBytes", {}).items()}
        for key, value in (router.get("DatapathStats") or {}).items():
            if key.startswith("sleeve_") and key.endswith("_bytes"):
                row[f"sleeve {key[7:-6].replace('_', ' ')} (queued)"] = float(value)
        rows.append(row)
    keys = sorted({k for row in rows for k in row})
    return {k: statistics.mean(row.get(k, 0.0) for row in rows) for k in keys}


def run(hosts_n: int, steady: float) -> tuple[dict[str, float], dict[str, float]]:
    with Cluster(hosts_n, prefix="ov" + random_prefix()) as cluster:
        hosts = list(cluster.hosts)
        hosts[0].launch()
        for prev, host in itertools.pairwise(hosts):
            host.launch(prev.ip)
        wait_for_mesh(hosts, timeout=60)
        wait_until(
            lambda: all(_on_fastdp(h, hosts_n - 1) for h in hosts),
            timeout=60,
            message="every connection on fastdp",
        )
        converged = _sample(hosts)
        time.sleep(steady)  # a measurement window, not a synchronisation
        return converged, _sample(hosts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=6)
    parser.add_argument("--steady", type=float, default=30.0, help="steady window, s")
    args = parser.parse_args(argv)
    converged, later = run(args.hosts, args.steady)
    peers = args.hosts - 1
    print(f"{args.hosts} routers, per router and per peer (mean over routers)")
    print(f"{'counter':<34} {'at convergence, B/peer':>23} {'steady, B/peer/s':>17}")
    for key in sorted(set(converged) | set(later)):
        if key == "sent mesh":
            continue
        now, then = converged.get(key, 0.0), later.get(key, 0.0)
        rate = (then - now) / args.steady / peers
        print(f"{key:<34} {now / peers:>23,.0f} {rate:>17,.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
