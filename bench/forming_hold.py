"""The topology forming hold, simulated (BENCHMARKS.md "Scale", fifth pass): a chain start
of N routers whose overlays take LOW..HIGH s to establish, run in one process (the core's
`SimNet`) for each hold setting; per router, the versions it published, the topology
updates it received and the changes they brought, and the longest time a router's first
established connection took to reach another router (until then nobody has a route to it).

    .venv/bin/python bench/forming_hold.py --routers 100 --spread 30 --overlay 2,15 --holds 8,16,24
    .venv/bin/python bench/forming_hold.py --holds 8 --hold-first-route   # the rule before

The figures are counted on the simulated mesh, not timed: "sim cpu" is this process's
CPU for the run, for comparison between settings only.
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sim.simnet import SimNet
from tests.sim.slow_overlay import RouteLags, SlowOverlay, full_view

from weavenet.core.mesh import router as router_module
from weavenet.core.mesh.peers import Peers


class Counts:
    """Counters fed by wrapping two Peers methods for one run (observation only)."""

    def __init__(self) -> None:
        self.published = self.updates = self.changed = 0

    def install(self) -> tuple[object, object]:
        publish, apply = Peers.publish, Peers.apply_update

        def counted_publish(peers: Peers) -> None:
            self.published += 1
            publish(peers)

        def counted_apply(peers: Peers, data: bytes) -> tuple[set[int], set[int]]:
            received, changed = apply(peers, data)
            self.updates += 1
            self.changed += len(changed)
            return received, changed

        Peers.publish, Peers.apply_update = counted_publish, counted_apply  # type: ignore[method-assign]
        return publish, apply


def run(args: argparse.Namespace, hold: float, seed: int) -> str:
    router_module.TOPOLOGY_FORMING_HOLD = hold
    low, high = args.overlay
    net = SimNet(
        args.routers,
        seed,
        max_delay=0.02,
        overlay=lambda i: SlowOverlay(random.Random(i), low, high),
    )
    for k in range(1, args.routers):
        net.at(args.spread * k / args.routers, functools.partial(net.connect, k, [k - 1]))
    counts, watch = Counts(), RouteLags()
    saved = counts.install()
    started = time.process_time()
    try:
        while not (net.now > args.spread and full_view(net, args.routers)):
            if net.now > args.limit:
                return f"hold {hold:g} s, seed {seed}: not converged after {args.limit:g} s"
            net.run_for(0.1)
            watch.observe(net)
    finally:
        Peers.publish, Peers.apply_update = saved  # type: ignore[method-assign]
    n = args.routers
    lag = max(watch.lags())
    return (
        f"hold {hold:g} s, seed {seed}: converged {net.now:.1f} s, per router "
        f"{counts.published / n:.1f} versions, {counts.updates / n:.0f} updates received "
        f"({counts.changed / n:.0f} changes), first route seen after <= {lag:.1f} s, "
        f"sim cpu {time.process_time() - started:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routers", type=int, default=50)
    parser.add_argument(
        "--spread", type=float, default=10.0, help="seconds over which the chain starts"
    )
    parser.add_argument("--overlay", default="1,6", help="LOW,HIGH seconds an overlay takes")
    parser.add_argument("--holds", default="8,16", help="TOPOLOGY_FORMING_HOLD values to run")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--limit", type=float, default=300.0)
    parser.add_argument(
        "--hold-first-route",
        action="store_true",
        help="hold the first version with an established connection too (the rule before)",
    )
    args = parser.parse_args(argv)
    if args.hold_first_route:
        router_module.Router._hold_while_forming = lambda self: self.peers.forming()  # type: ignore[method-assign]
    args.overlay = tuple(float(x) for x in args.overlay.split(","))
    for hold in (float(h) for h in args.holds.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            print(run(args, hold, seed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
