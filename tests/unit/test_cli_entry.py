"""The ``weave`` script's exit: no interpreter teardown, but the same exit status, output
and atexit handlers as an ordinary exit."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NoReturn

import pytest

from weavenet.cli import entry

WEAVE = Path(sys.executable).parent / "weave"


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_weave_version_prints_and_exits_zero() -> None:
    done = subprocess.run(
        [WEAVE, "version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"WEAVE_HTTP_ADDR": "127.0.0.1:1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("weave script ")


def test_weave_usage_error_is_one_line_and_nonzero() -> None:
    done = subprocess.run([WEAVE, "no-such-command"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1
    assert "no-such-command" in done.stderr


def test_finish_runs_atexit_and_flushes_buffered_output() -> None:
    done = run_python(
        """
        import atexit, sys
        from weavenet.cli.entry import finish
        atexit.register(lambda: print("atexit ran"))
        sys.stdout.write("buffered, no newline")
        finish(3)
        """
    )
    assert done.returncode == 3
    assert done.stdout == "buffered, no newlineatexit ran\n"  # the order of a usual exit


def test_finish_follows_sys_exit_rules_for_the_status() -> None:
    for code, want in (("None", 0), ("7", 7), ("'a message'", 1)):
        done = run_python(f"from weavenet.cli.entry import finish; finish({code})")
        assert done.returncode == want, (code, done.stderr)
    assert "a message" in done.stderr


def test_finish_waits_for_a_running_thread() -> None:
    done = run_python(
        """
        import threading, time
        from weavenet.cli.entry import finish
        def late():
            time.sleep(0.2)
            print("thread done", flush=True)
        threading.Thread(target=late).start()
        finish(4)
        """
    )
    assert done.returncode == 4
    assert "thread done" in done.stdout


class _ClosedPipe(io.StringIO):
    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


class _Exited(Exception):
    pass


def test_finish_reports_output_it_could_not_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    def exit_now(status: int) -> NoReturn:
        raise _Exited(status)

    monkeypatch.setattr(entry.os, "_exit", exit_now)
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    monkeypatch.setattr(entry.threading, "active_count", lambda: 1)
    monkeypatch.setattr(entry.atexit, "_run_exitfuncs", lambda: None)  # pytest's own
    with pytest.raises(_Exited) as exited:
        entry.finish(0)
    assert exited.value.args == (entry.FLUSH_FAILED,)
    with pytest.raises(_Exited) as exited:
        entry.finish(5)  # a failing command keeps its own status
    assert exited.value.args == (5,)
