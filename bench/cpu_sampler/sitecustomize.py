"""A CPU-time sampler for routers under `bench/scale.py --sample FILE` (development only).

Put on PYTHONPATH, Python imports this at start-up. In a `weave launch` whose command line
names a router listed in $WEAVENET_SAMPLE_NICKS (comma-separated nicknames), SIGPROF
(ITIMER_PROF: user + system CPU of the whole process) samples the main thread's stack every
2 ms of CPU, in the CLI and, counters restarted at the fork, in the router it becomes.
Stacks and counts are written to $WEAVENET_SAMPLE_OUT.<pid>, one "frame;frame;... count"
line each (the format flame-graph tools read), every 10 samples (the router ends by
SIGTERM and os._exit). Samples are CPU time, so 50 routers sharing 2 cores do not inflate
the functions that happen to be running when the scheduler takes the core away (wall-clock
samplers count those); CPU of other threads shows under whatever the main thread waits in
(epoll). The kernel delivers at most one SIGPROF per scheduler tick: treat counts as
proportions.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
from types import FrameType

_NICKS = [n for n in os.environ.get("WEAVENET_SAMPLE_NICKS", "").split(",") if n]
_INTERVAL = 0.002
_STRIP = ("/src/", "/site-packages/", "/lib/python3")


def _where(filename: str) -> str:
    for marker in _STRIP:
        cut = filename.rfind(marker)
        if cut >= 0:
            return filename[cut + len(marker) :].lstrip("/0123456789.")
    return filename


def _stack(frame: FrameType | None) -> str:
    parts = []
    while frame is not None:
        code = frame.f_code
        parts.append(f"{code.co_name} ({_where(code.co_filename)}:{frame.f_lineno})")
        frame = frame.f_back
    return ";".join(reversed(parts))


class _Sampler:
    def __init__(self, out: str) -> None:
        self.out = out
        self.counts: collections.Counter[str] = collections.Counter()
        self.taken = 0
        self.busy = False

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.busy:  # a signal while writing: drop it rather than re-enter
            return
        self.busy = True
        try:
            self.counts[_stack(frame)] += 1
            self.taken += 1
            if self.taken % 10 == 0:
                self.dump()
        finally:
            self.busy = False

    def dump(self) -> None:
        path = f"{self.out}.{os.getpid()}"
        try:
            with open(path + ".tmp", "w") as f:
                f.writelines(f"{stack} {n}\n" for stack, n in list(self.counts.items()))
            os.replace(path + ".tmp", path)
        except OSError:  # never take the router down: lose this dump instead
            pass

    def start(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, _INTERVAL, _INTERVAL)

    def restart_in_child(self) -> None:
        self.counts.clear()
        self.taken = 0
        self.start()  # timers are not inherited across fork


if _NICKS and any(arg in _NICKS for arg in sys.argv):
    _sampler = _Sampler(os.environ.get("WEAVENET_SAMPLE_OUT", "/tmp/weavenet-sample"))
    signal.signal(signal.SIGPROF, _sampler.on_signal)
    os.register_at_fork(after_in_child=_sampler.restart_in_child)
    _sampler.start()
