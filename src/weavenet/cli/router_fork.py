"""``weave launch`` starts the router by forking: the child becomes the detached router.

The CLI has already imported the router's code (it parses the router flags with the
router's own command to find the peers), so a forked child starts with all of it loaded;
exec'ing ``python -m weavenet.daemon`` would start a second interpreter that imports
everything again (about half the CPU of a launch). The child does what a detached daemon
started with Popen(start_new_session=True) would have: a new session, stdin from
/dev/null, stdout and stderr to the log, no other inherited descriptors, the router's
environment and argv, plus the write end of the pipe through which it says it is up
(weavenet.launch_ready); then it runs the router's ``main`` and exits with its status
without ever returning into the CLI.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from weavenet.launch_ready import READY_ENV, READY_FD


class ForkedRouter:
    """The forked router as the launcher watches it (the subset of Popen it uses)."""

    def __init__(self, pid: int, ready_fd: int) -> None:
        self.pid = pid
        self.ready_fd = ready_fd  # read end: see weavenet.launch_ready
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit status once the router has exited (it is our child until we exit)."""
        if self.returncode is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid == self.pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def fork_router(argv: Sequence[str], log_fd: int, env: dict[str, str]) -> ForkedRouter:
    """Fork; the child runs the router with ``argv`` (its flags), output to ``log_fd``."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would write the CLI's buffered output again
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _become_router(list(argv), log_fd, write_end, env)
    os.close(write_end)
    return ForkedRouter(pid, read_end)


def _become_router(argv: list[str], log_fd: int, ready_fd: int, env: dict[str, str]) -> NoReturn:
    code = 1
    try:
        _detach(log_fd, ready_fd)
        _set_process_title(argv)
        os.environ.clear()
        os.environ.update(env)
        os.environ[READY_ENV] = str(READY_FD)
        sys.argv = ["weaver", *argv]
        from weavenet.daemon import main

        main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:  # whatever it is goes to the log, never back into the CLI
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _detach(log_fd: int, ready_fd: int) -> None:
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    if ready_fd != READY_FD:  # (os.pipe's ends are not inheritable; dup2 onto itself fails)
        os.dup2(ready_fd, READY_FD, inheritable=False)
    os.closerange(READY_FD + 1, os.sysconf("SC_OPEN_MAX"))


def _set_process_title(argv: list[str]) -> None:
    """The router shows as ``weaver FLAGS`` (``ps``, /proc/PID/comm and cmdline), not as
    the ``weave launch ...`` it was forked from: that command line may hold the password
    (``--password``), which the router must not show for its whole life. setproctitle
    overwrites the argv area the kernel shows (Python keeps its own copy of argv)."""
    import setproctitle

    setproctitle.setproctitle(" ".join(["weaver", *argv]))
    setproctitle.setthreadtitle("weaver")


def _exit_code(code: object) -> int:
    """sys.exit's argument as a process status (a message is printed, as Python does)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
