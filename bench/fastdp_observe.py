"""What fastdp's drift detection costs a router per minute at N fake peers (issue 10).

In one harness namespace (root): the weave bridge and TAP, fastdp's devices and one pin
per fake peer (a VXLAN entry and a bridge entry each), as a router with N peers that
each run one container holds them. Measured with ``time.process_time`` (CPU, not wall):

* an observing round's kernel work: ``vxlan.observe`` (a dump of the links and of the
  whole fdb) and ``diff``;
* a round that looks at nothing: ``plan`` and ``additions_only`` (every APPLY_PERIOD);
* pinning all N MACs in one apply (was O(N²): a dump of the fdb per pin);
* the watcher: reading and judging the notifications that pinning sends (2N
  RTM_NEWNEIGH, all skipped by the header filter), per notification.

Then, per minute of a converged router: before, an observing round every 5 s; after,
one every OBSERVE_PERIOD (the watcher's socket is silent while nothing changes).

    .venv/bin/python bench/fastdp_observe.py [--sizes 50,100] [--repeat 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from weavenet.core.overlay.vxlan_plan import (
    AddPin,
    Desired,
    VxlanConfig,
    additions_only,
    diff,
    plan,
)
from weavenet.core.overlay.vxlan_watch import drifted
from weavenet.dataplane import ensure_bridge, ensure_tap, kernel_watch, vxlan
from weavenet.dataplane.netlink import run_in_netns
from weavenet.harness import Cluster, random_prefix
from weavenet.io.fastdp import APPLY_PERIOD, OBSERVE_PERIOD, UNWATCHED_OBSERVE_PERIOD

CONFIG = VxlanConfig("weave", "weave-tap", 1376, 6784)
BEFORE_PERIOD = 5.0  # OBSERVE_PERIOD before the watcher


def _desired(n: int) -> Desired:
    peers = {peer: f"172.31.{peer >> 8}.{peer & 0xFF}" for peer in range(1, n + 1)}
    macs = [(bytes((2, 0, 0, 0, peer >> 8, peer & 0xFF)), peer) for peer in peers]
    return plan(CONFIG, peers, macs)


def _cpu_ms(fn: Callable[[], object], repeat: int) -> float:
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat * 1e3


def _notification_us(desired: Desired, netns: str) -> tuple[float, int, float]:
    """CPU per notification of reading and judging what pinning every MAC sends, their
    number, and the CPU of that pinning (one apply)."""
    devices_only = Desired(desired.data, desired.heartbeat, desired.tap, frozenset(), frozenset())
    vxlan.apply(diff(devices_only, vxlan.observe(CONFIG, netns)[0]), CONFIG, netns)
    indexes = vxlan.observe(CONFIG, netns)[1]
    watch = kernel_watch.open_watch(netns)
    try:
        pin_start = time.process_time()
        vxlan.apply([AddPin(mac, ip) for mac, ip in sorted(desired.pins)], CONFIG, netns)
        pin_cpu = time.process_time() - pin_start
        start, read, drift = time.process_time(), 0, 0
        while batch := _drain_once(watch):
            read += len(batch)
            events = [e for data in batch for e in kernel_watch.parse(data, indexes, CONFIG)]
            drift += sum(drifted(e, desired, indexes) for e in events)
        cpu = time.process_time() - start
    finally:
        watch.close()
    assert drift == 0, f"{drift} of our own notifications were taken for drift"
    return (cpu / read * 1e6 if read else 0.0), read, pin_cpu


def _drain_once(watch: kernel_watch.KernelWatch) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(kernel_watch.READ_BATCH):
        try:
            out.append(watch.sock.recv(65536))
        except BlockingIOError:
            break
    return out


def measure(n: int, repeat: int, netns: str) -> dict[str, float]:
    desired = _desired(n)
    per_note_us, notes, pin_cpu = _notification_us(desired, netns)  # leaves the plan applied

    def observing_round() -> None:  # in the namespace, as the router's worker thread
        diff(desired, vxlan.observe(CONFIG)[0])

    observe_ms = run_in_netns(netns, lambda: _cpu_ms(observing_round, repeat))
    quiet_ms = _cpu_ms(lambda: additions_only(desired, _desired(n)), repeat)
    minute = 60.0 / APPLY_PERIOD * quiet_ms
    return {
        "observe_ms": observe_ms,
        "quiet_ms": quiet_ms,
        "note_us": per_note_us,
        "notes": notes,
        "pin_ms": pin_cpu * 1e3,
        "before_ms_min": minute + 60.0 / BEFORE_PERIOD * observe_ms,
        "after_ms_min": minute + 60.0 / OBSERVE_PERIOD * observe_ms,
        "unwatched_ms_min": minute + 60.0 / UNWATCHED_OBSERVE_PERIOD * observe_ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="50,100")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    print("N    observe+diff  quiet round  pin all  per notification  CPU/min before -> after")
    for n in (int(s) for s in args.sizes.split(",")):
        with Cluster(1, prefix="fb" + random_prefix()) as cluster:
            netns = cluster.hosts[0].netns
            ensure_bridge("weave", netns=netns)
            ensure_tap("weave-tap", "weave", netns=netns)
            r = measure(n, args.repeat, netns)
        print(
            f"{n:<4} {r['observe_ms']:9.2f} ms {r['quiet_ms']:9.3f} ms {r['pin_ms']:5.0f} ms "
            f"{r['note_us']:8.1f} µs ({int(r['notes'])})   "
            f"{r['before_ms_min']:6.1f} -> {r['after_ms_min']:5.1f} ms "
            f"(no watcher: {r['unwatched_ms_min']:.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
