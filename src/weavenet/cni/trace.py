"""Where a plugin run spends its time, when ``WEAVE_CNI_TRACE`` names a file (off by default).

Each run appends one JSON line to that file: the command, the container id, the pid, the
wall-clock start, how long the interpreter took to reach our code (``startup_ms``), the CPU
the process used, the total, and each phase in order (``parse``, every router HTTP call by
method and route, the delegated IPAM plugin) with its milliseconds; a router call to
``/cni-kernel/*`` also carries the router's own queue and work time (``router``). Runtimes
pass their environment to plugins, so setting the variable for containerd (or podman)
traces every ADD, DEL and CHECK it makes. Stdlib only: it must not slow the plugin down.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TRACE_ENV = "WEAVE_CNI_TRACE"


class Trace:
    """The timings of one plugin run (a no-op unless started with a path)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.start = time.monotonic()
        self.record: dict[str, Any] = {"pid": os.getpid(), "at": time.time()}
        self.phases: list[dict[str, Any]] = []

    @property
    def on(self) -> bool:
        return bool(self.path)

    def note(self, **fields: Any) -> None:
        if self.on:
            self.record.update(fields)

    @contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        """Time the block as phase `name`; the yielded dict takes extra fields."""
        extra: dict[str, Any] = {}
        began = time.monotonic()
        try:
            yield extra
        finally:
            if self.on:
                ms = round((time.monotonic() - began) * 1000, 1)
                self.phases.append({"phase": name, "ms": ms, **extra})

    def annotate(self, **fields: Any) -> None:
        """Add fields to the last phase (e.g. the router's own timing of a call)."""
        if self.on and self.phases:
            self.phases[-1].update(fields)

    def finish(self, status: int) -> None:
        if not self.on or self.path is None:
            return
        self.record.update(
            status=status,
            startup_ms=_startup_ms(),
            total_ms=round((time.monotonic() - self.start) * 1000, 1),
            cpu_ms=round(time.process_time() * 1000, 1),
            phases=self.phases,
        )
        try:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps(self.record) + "\n")
        except OSError:
            pass  # tracing must never fail the plugin


def _startup_ms() -> float | None:
    """Milliseconds from the process's start (the kernel's clock) to our first line."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            now = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime, in ticks
    elapsed_since_main = time.monotonic() - CURRENT.start if CURRENT else 0.0
    return round((now - started - elapsed_since_main) * 1000, 1)


CURRENT: Trace | None = None


def begin(path: str | None) -> Trace:
    global CURRENT
    CURRENT = Trace(path)
    return CURRENT


def current() -> Trace:
    """The run's trace (a disabled one if none was begun, e.g. in unit tests)."""
    return CURRENT if CURRENT is not None else Trace(None)
