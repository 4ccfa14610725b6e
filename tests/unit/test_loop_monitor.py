"""The event-loop step monitor: long steps show up, every step is counted, the lag probe
sees a blocked loop, and the shim is undone."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from weavenet.api.metrics import LoopCollector
from weavenet.io.loop_monitor import SLOW_LOG_INTERVAL, LoopMonitor, MonitorError


def _run_callbacks(loop: asyncio.AbstractEventLoop, *callbacks: object) -> None:
    """Run exactly these callbacks, then one that stops the loop."""
    for callback in callbacks:
        loop.call_soon(callback)  # type: ignore[arg-type]
    loop.call_soon(loop.stop)
    loop.run_forever()


def _block_60ms() -> None:
    time.sleep(0.06)  # the workload: a callback that holds the loop


def test_a_callback_blocking_60ms_is_the_longest_step(loop: asyncio.AbstractEventLoop) -> None:
    with LoopMonitor() as monitor:
        _run_callbacks(loop, lambda: None, _block_60ms, lambda: None)
    stats = monitor.stats()
    assert stats.max_step >= 0.06
    assert "_block_60ms" in stats.slowest
    buckets = dict(stats.cumulative())
    assert buckets["0.05"] <= stats.steps - 1  # the blocking step is over 50 ms
    assert buckets["+Inf"] == stats.steps


def test_cpu_time_per_step_tells_work_from_waiting(loop: asyncio.AbstractEventLoop) -> None:
    """A step that sleeps is long on the wall clock only; one that computes uses CPU (a
    descheduled router's steps look like the first). The wall clock is the test's, so
    that a loaded machine stretching the computing step cannot reorder them."""
    wall = [0.0]

    def sleeping() -> None:
        time.sleep(0.02)
        wall[0] += 0.06

    def computing() -> None:
        end = time.thread_time() + 0.03
        while time.thread_time() < end:
            pass
        wall[0] += 0.03

    with LoopMonitor(clock=lambda: wall[0]) as monitor:
        _run_callbacks(loop, sleeping, computing, lambda: None)
    stats = monitor.stats()
    assert stats.max_step == pytest.approx(0.06) and "sleeping" in stats.slowest
    assert stats.max_step_cpu >= 0.03 and "computing" in stats.slowest_cpu


def test_every_step_is_counted_once(loop: asyncio.AbstractEventLoop) -> None:
    with LoopMonitor() as monitor:
        _run_callbacks(loop, *[lambda: None] * 25)
        first = monitor.stats().steps
        _run_callbacks(loop, *[lambda: None] * 10)
    assert first == 26  # 25 callbacks and the stop
    assert monitor.stats().steps == 26 + 11
    assert sum(monitor.stats().counts) == monitor.stats().steps
    assert monitor.stats().total_seconds >= monitor.stats().max_step > 0


def test_task_steps_are_steps(loop: asyncio.AbstractEventLoop) -> None:
    async def hop(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    with LoopMonitor() as monitor:
        loop.run_until_complete(hop(20))
    assert monitor.stats().steps >= 21  # each resumption of the task is a step


def test_a_slow_task_step_names_its_coroutines(loop: asyncio.AbstractEventLoop) -> None:
    async def settle() -> None:
        _block_60ms()
        await asyncio.sleep(0)

    async def starting() -> None:
        await asyncio.sleep(0)
        await settle()

    with LoopMonitor() as monitor:
        loop.run_until_complete(starting())
    assert monitor.stats().slowest.startswith("task step: ")
    assert "starting" in monitor.stats().slowest and "settle" in monitor.stats().slowest


def test_a_loop_in_another_thread_is_not_ours(loop: asyncio.AbstractEventLoop) -> None:
    def elsewhere() -> None:
        other = asyncio.new_event_loop()
        try:
            _run_callbacks(other, _block_60ms)
        finally:
            other.close()

    with LoopMonitor() as monitor:
        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join()
        _run_callbacks(loop, lambda: None)
    assert monitor.stats().steps == 2  # ours: the callback and the stop
    assert monitor.stats().max_step < 0.06


def test_the_lag_probe_sees_a_blocked_loop(loop: asyncio.AbstractEventLoop) -> None:
    monitor = LoopMonitor(probe_interval=0.01)

    async def scenario() -> None:
        monitor.start_probe()
        asyncio.get_running_loop().call_soon(_block_60ms)  # holds the loop past the probe
        deadline = time.monotonic() + 30
        while monitor.stats().probes < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    with monitor:
        loop.run_until_complete(scenario())
    stats = monitor.stats()
    assert stats.probes >= 3
    assert stats.max_lag >= 0.049  # due 10 ms after arming, run after the 60 ms block
    assert 0.0 <= stats.lag <= stats.max_lag


def test_the_shim_is_removed_and_only_one_monitor_runs(loop: asyncio.AbstractEventLoop) -> None:
    original = asyncio.events.Handle._run
    monitor = LoopMonitor().install()
    try:
        assert asyncio.events.Handle._run is not original
        with pytest.raises(MonitorError, match="already installed"):
            LoopMonitor().install()
    finally:
        monitor.close()
    assert asyncio.events.Handle._run is original
    monitor.close()  # idempotent
    _run_callbacks(loop, lambda: None)
    assert monitor.stats().steps == 0  # closed monitors measure nothing


def test_metrics_export_histogram_max_and_lag(loop: asyncio.AbstractEventLoop) -> None:
    with LoopMonitor() as monitor:
        _run_callbacks(loop, _block_60ms, lambda: None)
    monitor.note_lag(0.125)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LoopCollector(monitor))
    text = generate_latest(registry).decode()
    assert "# TYPE weavenet_event_loop_step_seconds histogram" in text
    up_to_50ms = dict(monitor.stats().cumulative())["0.05"]
    assert up_to_50ms <= 2  # the blocking step is not in it
    assert f'weavenet_event_loop_step_seconds_bucket{{le="0.05"}} {float(up_to_50ms)}' in text
    assert 'weavenet_event_loop_step_seconds_bucket{le="+Inf"} 3.0' in text
    assert "weavenet_event_loop_step_seconds_count 3.0" in text
    max_line = next(ln for ln in text.splitlines() if ln.startswith("weavenet_event_loop_step_max"))
    assert float(max_line.split()[1]) >= 0.06
    cpu_line = next(ln for ln in text.splitlines() if ln.startswith("weavenet_event_loop_step_cpu"))
    assert float(cpu_line.split()[1]) == monitor.stats().max_step_cpu
    assert "weavenet_event_loop_lag_seconds 0.125" in text
    assert "weavenet_event_loop_lag_max_seconds 0.125" in text


def test_the_cpu_used_until_ready_is_exported_once_marked() -> None:
    monitor = LoopMonitor()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LoopCollector(monitor))
    assert "weavenet_ready_cpu_seconds" not in generate_latest(registry).decode()
    before = os.times()
    sum(i * i for i in range(200_000))  # some CPU of our own
    monitor.mark_ready()
    after = os.times()
    ready = monitor.stats().ready_cpu
    assert ready is not None
    assert before.user + before.system <= ready <= after.user + after.system
    text = generate_latest(registry).decode()
    line = next(ln for ln in text.splitlines() if ln.startswith("weavenet_ready_cpu_seconds "))
    assert float(line.split()[1]) == ready


def test_slow_steps_are_logged_at_most_every_interval_but_a_new_longest_always(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]

    def taking(seconds: float) -> Callable[[], None]:
        def step() -> None:
            now[0] += seconds  # the monitor's clock: the step "took" this long

        return step

    caplog.set_level(logging.INFO, logger="weavenet")
    with LoopMonitor(clock=lambda: now[0], cpu_clock=lambda: 0.0) as monitor:
        _run_callbacks(loop, taking(0.2), taking(0.1), taking(0.1), taking(0.3), taking(0.1))
        now[0] += SLOW_LOG_INTERVAL
        _run_callbacks(loop, taking(0.1))
    lines = [r.getMessage() for r in caplog.records if "event loop step took" in r.getMessage()]
    assert [line.split(" ms")[0].rsplit(" ", 1)[1] for line in lines] == ["200", "300", "100"]
    assert all("(0.0 ms CPU)" in line for line in lines)
    assert lines[1].endswith("(2 more slow steps since the last line)")
    assert lines[2].endswith("(1 more slow step since the last line)")
    assert monitor.stats().max_step == pytest.approx(0.3)
    assert sum(monitor.stats().counts) == monitor.stats().steps == 8
