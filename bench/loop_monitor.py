"""What timing every event-loop step costs: the Handle._run shim vs asyncio debug mode.

    .venv/bin/python bench/loop_monitor.py [--steps N] [--repeat R]

Runs two workloads on a fresh loop, best of R runs each: a chain of callbacks (each
``call_soon``s the next) and a task resuming itself (``await asyncio.sleep(0)``). Prints
the CPU time per step with nothing, with :class:`weavenet.io.loop_monitor.LoopMonitor`
installed, and with ``loop.set_debug(True)`` (what ``slow_callback_duration`` needs).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable

from weavenet.io.loop_monitor import LoopMonitor


def _callback_chain(loop: asyncio.AbstractEventLoop, steps: int) -> None:
    left = steps

    def step() -> None:
        nonlocal left
        left -= 1
        if left:
            loop.call_soon(step)
        else:
            loop.stop()

    loop.call_soon(step)
    loop.run_forever()


def _task_steps(loop: asyncio.AbstractEventLoop, steps: int) -> None:
    async def hop() -> None:
        for _ in range(steps):
            await asyncio.sleep(0)

    loop.run_until_complete(hop())


def _per_step(
    workload: Callable[[asyncio.AbstractEventLoop, int], None], mode: str, steps: int
) -> float:
    loop = asyncio.new_event_loop()
    monitor = LoopMonitor() if mode == "monitor" else None
    try:
        loop.set_debug(mode == "debug")
        loop.slow_callback_duration = 0.05
        if monitor is not None:
            monitor.install()
        start = time.process_time()
        workload(loop, steps)
        return (time.process_time() - start) / steps
    finally:
        if monitor is not None:
            monitor.close()
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("asyncio").setLevel(logging.ERROR)  # debug mode's slow-callback lines
    workloads = {"callback chain": _callback_chain, "task steps": _task_steps}
    print(f"{'workload':<16} {'plain':>10} {'monitor':>10} {'debug':>10}   (CPU us per step)")
    for label, workload in workloads.items():
        cost = {
            mode: min(_per_step(workload, mode, args.steps) for _ in range(args.repeat))
            for mode in ("plain", "monitor", "debug")
        }
        cells = " ".join(f"{cost[m] * 1e6:>10.2f}" for m in ("plain", "monitor", "debug"))
        extra = (cost["monitor"] - cost["plain"]) * 1e6
        print(f"{label:<16} {cells}   monitor adds {extra:.2f} us")


if __name__ == "__main__":
    main()
