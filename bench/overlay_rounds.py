"""What one mesh round costs the overlays with N idle peers (the core only, no I/O).

After every mesh round and every burst of packets the shells collect what the overlays
want sent: the sleeve's datagrams (``Datapath.take_udp``) and the fastdp and fast-sleeve
heartbeats (``take_heartbeats``). With N established, idle peers (nothing due), that
should cost the same at any N. Prints CPU µs per round (``time.process_time``) for each N.

    .venv/bin/python bench/overlay_rounds.py [--sizes 20,50,100,200] [--rounds 20000]
"""

from __future__ import annotations

import argparse
import sys
import time

from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.datapath import Datapath
from weavenet.core.overlay.fast_sleeve import FAST_SLEEVE_OVERLAY, FastSleeveOverlay
from weavenet.core.overlay.fastdp import FASTDP_OVERLAY, FastdpOverlay
from weavenet.core.overlay.sleeve_overlay import SleeveOverlay
from weavenet.core.overlay.switch import OverlaySwitch

US = 0x0A0000000001
THEIRS = (FASTDP_OVERLAY, FAST_SLEEVE_OVERLAY, "sleeve")


def _mesh(n: int) -> tuple[Datapath, FastdpOverlay, FastSleeveOverlay]:
    sleeve, fastdp, fast = SleeveOverlay(US), FastdpOverlay(), FastSleeveOverlay()
    switch = OverlaySwitch([fastdp, fast, sleeve], sleeve)
    datapath = Datapath(US, switch)
    for i in range(n):
        peer = 0x0B0000000000 + i
        addr = f"10.1.{i >> 8}.{i & 0xFF}:6783"
        params = OverlayParams(peer, US, True, 1000 + i, "10.0.0.1:1", addr, None, THEIRS)
        conn = switch.prepare_connection(params)
        conn.confirm(0.0)
        for index, sub_tag in ((0, 0), (1, 0), (2, 1)):  # every forwarder acked
            conn.control_message(7, bytes((index, sub_tag)), 0.0)
        conn.tick(0.1)
    datapath.take_udp()
    fastdp.take_heartbeats()
    fast.take_heartbeats()
    return datapath, fastdp, fast


def per_round_us(n: int, rounds: int) -> float:
    datapath, fastdp, fast = _mesh(n)
    start = time.process_time()
    for _ in range(rounds):
        datapath.take_udp()
        fastdp.take_heartbeats()
        fast.take_heartbeats()
    return (time.process_time() - start) / rounds * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="20,50,100,200")
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args(argv)
    for n in (int(s) for s in args.sizes.split(",")):
        print(f"N={n:<4} {per_round_us(n, args.rounds):7.2f} CPU-µs per round")
    return 0


if __name__ == "__main__":
    sys.exit(main())
