"""The router's CPU priority goes up while it serves work somebody waits on.

On a host whose cores are all busy, the scheduler shares them out evenly: a router
answering a ``/status`` or a DNS query among 25 runnable processes per core gets a
twenty-fifth of a core, and the ~1-4 ms of CPU a request takes from arrival to answer
become 100-400 ms. :class:`AutogroupBoost` raises the router's priority for the length
of such a request (io/foreground.py says when), so that the kernel runs it before the
processes it was sharing the cores with, and puts it back the moment the request is
answered. The boost lasts at most the foreground budget of CPU (10 ms for an HTTP
request, 1 ms for a DNS query), so a busy API cannot take the host.

The knob is the router's autogroup. With autogrouping on (``kernel.sched_autogroup_enabled``,
the default of the common distributions' kernels) the scheduler first shares the CPU
between sessions, as equals whatever their tasks' nice values, and ``weave launch``
starts the router in a session of its own: its autogroup's nice value
(``/proc/self/autogroup``) is the router's weight against every other session. Nothing
else is touched: a thread's own nice value would be inherited by any thread or process
started while it is raised, and kept for good; the autogroup's is one value, put back
for all its members at once.

Where it does not reach: a router that is not its session's leader (run from a shell:
the group is the shell's too) leaves the group alone, and a router inside a CPU cgroup
(a container's) is scheduled by the cgroup's weight, which autogroups do not change.
Lowering a nice value needs CAP_SYS_NICE; without it the first refusal turns the boost
off, with one log line.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("weavenet.io.cpu_priority")

BOOSTED_NICE = -10  # a CFS weight ~9.5 times a nice-0 group's
AUTOGROUP = "/proc/self/autogroup"


class AutogroupBoost:
    """``boost()`` raises the router's autogroup's priority, ``settle()`` puts back what
    it was; both are idempotent and cost a write only when they change something."""

    def __init__(self, nice: int = BOOSTED_NICE, autogroup: str = AUTOGROUP) -> None:
        self._nice = str(nice).encode()
        self._group: int | None = None
        self._base = b"0"
        self._boosted = False
        if os.getsid(0) == os.getpid():  # the session, and so the group, is the router's
            self._group, self._base = _open_autogroup(autogroup)

    @property
    def enabled(self) -> bool:
        return self._group is not None

    def boost(self) -> None:
        if self._boosted or self._group is None:
            return
        if self._write(self._nice, "Not raising CPU priority for API and DNS requests"):
            self._boosted = True

    def settle(self) -> None:
        if self._boosted:
            self._boosted = False
            self._write(self._base, "Could not put the CPU priority back")

    def close(self) -> None:
        self.settle()
        if self._group is not None:
            os.close(self._group)
            self._group = None

    def _write(self, nice: bytes, failure: str) -> bool:
        assert self._group is not None
        try:
            os.write(self._group, nice)
            return True
        except OSError as exc:  # no CAP_SYS_NICE: EPERM; never worth a second try
            log.info("%s: %s", failure, exc)
            os.close(self._group)
            self._group = None
            return False


def _open_autogroup(path: str) -> tuple[int | None, bytes]:
    """(a descriptor to write the autogroup's nice value to, that value now), or
    (None, b"0") when this kernel has no autogroups or they are not the router's to
    change (one log line)."""
    try:
        with open(path) as current:
            base = int(current.read().rsplit("nice", 1)[1])
    except (OSError, ValueError, IndexError):
        return None, b"0"  # no autogroups here
    try:
        return os.open(path, os.O_WRONLY), str(base).encode()
    except OSError as exc:
        log.info("Not raising CPU priority for API and DNS requests: %s", exc)
        return None, b"0"
