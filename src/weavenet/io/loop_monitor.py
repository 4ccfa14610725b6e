"""The event loop measuring itself: how long each step holds it, and how late timers fire.

A *step* is one callback the loop runs: a socket reader, a timer, or one resumption of a
task (asyncio schedules every task step as a callback). While a step runs nothing else
does, so the longest step bounds how late ``/status`` or a DNS answer can be.

How steps are timed, and why this way. Every callback asyncio runs goes through
``asyncio.events.Handle._run`` (timer handles inherit it; the C task implementation
schedules its steps as plain handles too). :class:`LoopMonitor` replaces that one method,
for the lifetime of the monitor, with a wrapper that reads ``time.perf_counter`` around
the original. It is a private method, so the shim is small, checked on install (the
attribute must exist and be a plain function) and undone on :meth:`LoopMonitor.close`.
The alternatives cost more or see less (measured by ``bench/loop_monitor.py``, see
BENCHMARKS.md): ``loop.set_debug(True)`` with ``slow_callback_duration`` logs slow
callbacks but keeps no histogram and makes every ``call_soon`` several times dearer
(debug mode captures a traceback per handle); overriding the loop's ``_run_once`` is just
as private and would also time the ``select()`` wait. The shim adds well under a
microsecond per step; a router step costs tens of microseconds or more.

Each step is also timed on the thread's CPU clock (``time.thread_time``, ~0.5 us a
read): on a machine with more runnable processes than cores a step's wall time is
mostly time the kernel gave to other processes, while its CPU time is the work the step
itself did, which is what a router can keep short. Both maxima are kept; the log line of
a slow step shows both.

The *lag probe* is a timer re-armed every ``probe_interval`` that records how late it
fired: public API only, and it also catches time lost outside steps (the process
descheduled on a busy machine, a long ``select`` bookkeeping pass).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from types import FunctionType
from typing import Any

import msgspec

log = logging.getLogger("weavenet.loop")

# Histogram upper bounds in seconds (Prometheus ``le``), from 100 us to 2.5 s.
STEP_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
SLOW_STEP = 0.05  # a step this long is logged with what ran (issue 10: none over 50 ms)
# ...but on a starved machine most steps are, and describing and logging each one was 2% of
# a converging router's CPU at 100 peers: a new longest step is always logged, the others
# at most once per SLOW_LOG_INTERVAL, with how many went unlogged (the histogram has all).
SLOW_LOG_INTERVAL = 10.0
PROBE_INTERVAL = 0.5
_DESCRIBE_LIMIT = 200


class MonitorError(RuntimeError):
    """The monitor cannot be installed (another one is active, or asyncio changed)."""


class LoopStats(msgspec.Struct, frozen=True):
    """A snapshot of what the monitor measured since it was installed."""

    buckets: tuple[float, ...]  # upper bounds; counts has one more entry (+Inf)
    counts: tuple[int, ...]  # steps per bucket, not cumulative
    steps: int
    total_seconds: float
    max_step: float
    slowest: str  # what ran in the longest step
    max_step_cpu: float  # the most CPU time one step used
    slowest_cpu: str  # what ran in that step
    lag: float  # the latest probe's lateness
    max_lag: float
    probes: int
    ready_cpu: float | None = None  # the process's CPU-s when it was ready (mark_ready)

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus histogram buckets: (le, steps at most that long), ending with +Inf."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*map(repr, self.buckets), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


def describe(handle: asyncio.Handle) -> str:
    """What a handle runs, short enough for a log line or a label. A task's step shows
    as an opaque ``TaskStepMethWrapper``: name the task's coroutine and where it waits."""
    text = repr(handle)
    if "TaskStepMethWrapper" in text:
        task = _stepped_task(handle)
        if task is not None:
            text = f"task step: {_where(task)}"
    return text if len(text) <= _DESCRIBE_LIMIT else text[: _DESCRIBE_LIMIT - 3] + "..."


def _stepped_task(handle: asyncio.Handle) -> asyncio.Task[Any] | None:
    """The task a step handle resumes (the C wrapper's only referent); asked only about a
    slow step or a new longest one, rare enough for the look-up's cost not to matter."""
    callback = getattr(handle, "_callback", None)
    found = [r for r in gc.get_referents(callback) if isinstance(r, asyncio.Task)]
    return found[0] if found else None


def _where(task: asyncio.Task[Any]) -> str:
    """The chain of coroutines the task is suspended in, each at its line: the step ran
    up to there (``serve:291 > start:93``)."""
    links: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and len(links) < 4:
        frame = getattr(coro, "cr_frame", None)
        name = getattr(coro, "__qualname__", type(coro).__name__)
        links.append(f"{name}:{frame.f_lineno}" if frame is not None else name)
        coro = getattr(coro, "cr_await", None)
    return " > ".join(links)


class LoopMonitor:
    """Times every event-loop step in this process and probes timer lateness.

    Only one monitor may be installed at a time (the shim is process-wide; a router
    process has one loop). Use :meth:`install`, then :meth:`start_probe` from the loop,
    and :meth:`close` to undo both.
    """

    _active: LoopMonitor | None = None

    def __init__(
        self,
        slow_step: float = SLOW_STEP,
        probe_interval: float = PROBE_INTERVAL,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.slow_step = slow_step
        self.probe_interval = probe_interval
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._max_cpu = 0.0
        self._slowest_cpu = ""
        self._counts = [0] * (len(STEP_BUCKETS) + 1)
        self._total = 0.0
        self._max = 0.0
        self._slowest = ""
        self._lag = self._max_lag = 0.0
        self._probes = 0
        self._ready_cpu: float | None = None
        self._logged_at = float("-inf")
        self._unlogged = 0
        self._original: Callable[[asyncio.Handle], None] | None = None
        self._probe: asyncio.TimerHandle | None = None

    # ---- the shim --------------------------------------------------------------------
    def install(self) -> LoopMonitor:
        """Start timing steps of the loops of this thread (the router's). A loop in
        another thread (pyroute2's synchronous API runs one per socket, in our worker
        threads) never holds ours: its steps are not counted. MonitorError if another
        monitor is active or asyncio no longer runs callbacks through Handle._run."""
        if LoopMonitor._active is not None:
            raise MonitorError("an event-loop monitor is already installed in this process")
        original = getattr(asyncio.events.Handle, "_run", None)
        if not isinstance(original, FunctionType):
            raise MonitorError(
                "asyncio.events.Handle._run is not a plain function in this Python: "
                "the step monitor cannot time callbacks (run without it)"
            )
        self._original = original
        asyncio.events.Handle._run = self._make_shim(original)  # type: ignore[method-assign]
        LoopMonitor._active = self
        return self

    def _make_shim(self, original: Callable[[asyncio.Handle], None]) -> Callable[..., None]:
        clock, cpu_clock, record = self._clock, self._cpu_clock, self._record
        owner, thread = threading.get_ident(), threading.get_ident

        def _run(handle: asyncio.Handle) -> None:  # the hot path: keep it this short
            if thread() != owner:
                original(handle)
                return
            start, cpu = clock(), cpu_clock()
            original(handle)
            record(clock() - start, cpu_clock() - cpu, handle)

        return _run

    def _record(self, seconds: float, cpu: float, handle: asyncio.Handle) -> None:
        self._counts[bisect_left(STEP_BUCKETS, seconds)] += 1
        self._total += seconds
        if cpu > self._max_cpu:
            self._max_cpu, self._slowest_cpu = cpu, describe(handle)
        if seconds <= self._max and seconds < self.slow_step:
            return
        longest = seconds > self._max
        now = self._clock()
        if not longest and now < self._logged_at + SLOW_LOG_INTERVAL:
            self._unlogged += 1
            return
        what = describe(handle)
        if longest:
            self._max, self._slowest = seconds, what
        if seconds >= self.slow_step:
            log.info(
                "event loop step took %.0f ms (%.1f ms CPU): %s%s",
                seconds * 1000,
                cpu * 1000,
                what,
                self._more(),
            )
            self._logged_at, self._unlogged = now, 0

    def _more(self) -> str:
        n = self._unlogged
        return f" ({n} more slow step{'' if n == 1 else 's'} since the last line)" if n else ""

    # ---- the lag probe ---------------------------------------------------------------
    def start_probe(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Arm the lag probe on ``loop`` (default: the running loop)."""
        loop = loop or asyncio.get_running_loop()
        self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._probe = loop.call_later(self.probe_interval, self._fired, loop)

    def _fired(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._probe is not None
        # asyncio runs timers up to one clock resolution early: clamp at zero
        self.note_lag(max(0.0, loop.time() - self._probe.when()))
        self._arm(loop)

    def note_lag(self, seconds: float) -> None:
        """Record one probe result: a timer fired ``seconds`` late."""
        self._lag = seconds
        self._max_lag = max(self._max_lag, seconds)
        self._probes += 1

    # ---- results and teardown --------------------------------------------------------
    def stats(self) -> LoopStats:
        return LoopStats(
            buckets=STEP_BUCKETS,
            counts=tuple(self._counts),
            steps=sum(self._counts),
            total_seconds=self._total,
            max_step=self._max,
            slowest=self._slowest,
            max_step_cpu=self._max_cpu,
            slowest_cpu=self._slowest_cpu,
            lag=self._lag,
            max_lag=self._max_lag,
            probes=self._probes,
            ready_cpu=self._ready_cpu,
        )

    def mark_ready(self) -> None:
        """The router is ready (`weave launch` returns): remember the CPU it has used, all
        threads, so that what converging costs can be told from what starting cost
        (bench/scale.py reads it from /metrics; a reader of /proc after the fact cannot
        know when the moment was)."""
        times = os.times()
        self._ready_cpu = times.user + times.system

    def close(self) -> None:
        """Stop the probe and restore asyncio's own Handle._run (idempotent)."""
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        if LoopMonitor._active is self and self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign,assignment]
            LoopMonitor._active = None
            self._original = None

    def __enter__(self) -> LoopMonitor:
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.close()
