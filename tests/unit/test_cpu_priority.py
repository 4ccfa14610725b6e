"""AutogroupBoost: the router's autogroup goes to the boosted nice value and back (its
threads' own nice values untouched), a router without the right to boost turns it off,
and one that does not lead its session leaves the session's group alone.

Each case runs in a child process of its own session (``start_new_session``: its own
autogroup), so nothing here changes the priority of the test runner or its session."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import unavailable

CHILD = """
import json, logging, os, sys
logging.basicConfig(stream=sys.stdout, format="LOG %(message)s", level=logging.INFO)
from weavenet.io.cpu_priority import AutogroupBoost
if len(sys.argv) > 1:
    os.setgid(65534); os.setuid(65534)  # nobody: no CAP_SYS_NICE

def now():
    group = open("/proc/self/autogroup").read().rsplit("nice", 1)[1]
    return [os.getpriority(os.PRIO_PROCESS, 0), int(group)]

seen = {"before": now()}
boost = AutogroupBoost()
boost.boost(); boost.boost()
seen["boosted"] = now()
boost.settle(); boost.settle()
seen["settled"] = now()
seen["enabled"] = boost.enabled
print(json.dumps(seen))
"""


def _run_child(*args: str, own_session: bool = True) -> tuple[dict[str, object], list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=own_session,
        check=True,
    )
    lines = proc.stdout.splitlines()
    return json.loads(lines[-1]), [x for x in lines if x.startswith("LOG ")]


@pytest.fixture(autouse=True)
def _needs_root_and_autogroups() -> None:
    if os.geteuid() != 0:
        unavailable("needs root (CAP_SYS_NICE, to raise a priority)")
    if not os.path.exists("/proc/self/autogroup"):
        unavailable("needs a kernel with autogroups (CONFIG_SCHED_AUTOGROUP)")


def test_the_autogroup_is_boosted_and_put_back() -> None:
    seen, logs = _run_child()
    thread_nice = seen["before"][0]
    assert seen["boosted"] == [thread_nice, -10]
    assert seen["settled"] == seen["before"]
    assert seen["enabled"] is True and logs == []


def test_without_the_right_to_boost_it_turns_itself_off_with_one_line() -> None:
    seen, logs = _run_child("unprivileged")
    assert seen["boosted"] == seen["before"] == seen["settled"]
    assert seen["enabled"] is False
    assert len(logs) == 1 and "Not raising CPU priority" in logs[0]


def test_a_router_that_does_not_lead_its_session_leaves_the_autogroup_alone() -> None:
    seen, logs = _run_child(own_session=False)  # in the test runner's session (and group)
    assert seen["boosted"] == seen["before"]
    assert seen["enabled"] is False and logs == []
