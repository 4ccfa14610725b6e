"""Summarise `bench/scale.py --sample FILE` output: where sampled routers spent their CPU.

    .venv/bin/python bench/sample_report.py FILE [--top 30]

Merges FILE.<pid> files (the routers', told apart from their CLIs by the fork frame) and
prints the share of CPU of: imports, each kind of event-loop step (the callback the loop
ran: mesh TCP data, a timer, a UDP batch, an HTTP request), and the functions with the most
samples inclusive of their callees.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

Stacks = list[tuple[list[str], int]]
FORK_FRAME = "_become_router ("
STEP_FRAME = "_run (weavenet/io/loop_monitor.py"


def load(prefix: Path) -> tuple[Stacks, Stacks]:
    """(router stacks, CLI stacks) from every PREFIX.<pid> file."""
    router: Stacks = []
    cli: Stacks = []
    for path in sorted(prefix.parent.glob(prefix.name + ".*")):
        if path.suffix == ".tmp":
            continue
        rows = []
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            rows.append((stack.split(";"), int(count)))
        (router if any(FORK_FRAME in f for fr, _ in rows for f in fr) else cli).extend(rows)
    return router, cli


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name}@{where.rsplit('/', 1)[-1].split(':')[0]}"


def step_kind(frames: list[str]) -> str:
    """What the sample was doing: an import, or the loop callback it ran under."""
    if any(f.startswith("_find_and_load (") for f in frames):
        return "imports"
    for i, frame in enumerate(frames):
        if frame.startswith(STEP_FRAME):
            rest = [f for f in frames[i + 1 :] if not f.startswith("_run (asyncio/events.py")]
            return " > ".join(_short(f) for f in rest[:3]) or "(loop)"
    return "outside the loop: " + _short(frames[-1])


def _print(title: str, counter: collections.Counter[str], total: int, top: int) -> None:
    print(f"\n{title}")
    for key, n in counter.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {key}")


def report(stacks: Stacks, top: int) -> None:
    total = sum(n for _, n in stacks) or 1
    kinds: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, n in stacks:
        kinds[step_kind(frames)] += n
        for frame in {f for f in frames if "weavenet/" in f}:
            inclusive[frame] += n
    print(f"{total} samples")
    _print("by event-loop step (or import)", kinds, total, top)
    common = {frame for frame, n in inclusive.items() if n > 0.9 * total}  # the launch chain
    for frame in common:
        del inclusive[frame]
    title = "weavenet functions, inclusive (those in >90% of samples left out)"
    _print(title, inclusive, total, top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", type=Path, help="the --sample FILE given to bench/scale.py")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    router, cli = load(args.prefix)
    print("== routers ==")
    report(router, args.top)
    print("\n== their weave launch CLIs (before the fork) ==")
    report(cli, 8)


if __name__ == "__main__":
    main()
