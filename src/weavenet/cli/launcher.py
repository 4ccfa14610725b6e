"""Starting and stopping the router process for ``weave launch`` / ``weave stop``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import msgspec

from weavenet.cli.client import router_answers
from weavenet.cli.router_fork import ForkedRouter, fork_router
from weavenet.launch_ready import Ready, wait_ready

DEFAULT_STATE_DIR = "/var/lib/weave"
PID_FILE = "weaver.pid"
LOG_FILE = "weaver.log"
LAUNCH_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.1
# `weave launch` polls /status from FIRST_POLL s apart, growing by half up to LAST_POLL:
# a router alone is up in ~0.5 s, but many starting at once take tens of seconds, and
# 10 polls a second cost each waiting CLI ~0.1 CPU-s over 40 s (BENCHMARKS.md, "Scale")
FIRST_POLL, LAST_POLL = 0.05, 0.5


class LaunchError(Exception):
    """The router could not be started; ``exit_code`` is what ``weave`` exits with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


DAEMON_MODULE = "weavenet.daemon"
EXEC_ENV = "WEAVENET_LAUNCH_EXEC"  # =1: exec a new interpreter instead of forking


def router_command() -> list[str]:
    """The command that runs the router (tests replace this)."""
    return [sys.executable, "-m", DAEMON_MODULE]


def forks_router() -> bool:
    """Fork the router from the CLI (see router_fork) unless the router command was
    replaced (tests run fake routers) or $WEAVENET_LAUNCH_EXEC=1 asks for the exec."""
    default = [sys.executable, "-m", DAEMON_MODULE]
    return router_command() == default and os.environ.get(EXEC_ENV) != "1"


Router = subprocess.Popen[bytes] | ForkedRouter


def take_option(args: Sequence[str], *names: str) -> tuple[str | None, list[str]]:
    """Remove ``--name X`` / ``--name=X`` (any of ``names``) from ``args``.

    Returns the last value given (None if absent) and the remaining args.
    """
    value: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if name in names and eq:
            value = inline
        elif arg in names:
            if i + 1 >= len(args):
                raise LaunchError(f"option {arg} needs a value, e.g. {arg} <value>")
            value = args[i + 1]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return value, rest


def _pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False  # our own child, now reaped
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _looks_like_router(pid: int) -> bool:
    """Guard against a stale pid file whose PID now belongs to something else."""
    try:
        return b"weave" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc or no permission: trust the pid file


def read_pid(state_dir: str) -> int | None:
    """The router PID from the pid file, if that process is alive (and a router)."""
    try:
        pid = int(Path(state_dir, PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _pid_alive(pid) and _looks_like_router(pid) else None


def _write_pid(state_dir: str, pid: int) -> None:
    path = Path(state_dir, PID_FILE)
    tmp = path.with_suffix(".pid.tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def _tail(path: Path, offset: int, lines: int = 20) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


class LaunchConfig(msgspec.Struct):
    state_dir: str
    http_addr: str
    args: list[str]
    env: dict[str, str]


def _with_bridge(args: Sequence[str]) -> list[str]:
    """Like ``weave launch``, give the router the ``weave`` bridge unless told otherwise
    (``--weave-bridge NAME``, or ``--no-bridge`` for a control-plane-only router).
    ``--no-restart`` (no Docker restart policy) means nothing here and is dropped.
    The Docker API proxy is on unless ``--proxy=false`` (or ``--no-proxy``) is given."""
    args = [a for a in args if a != "--no-restart"]
    if not any(a in ("--proxy", "--no-proxy") or a.startswith("--proxy=") for a in args):
        args = ["--proxy", *args]
    if "--no-bridge" in args:
        return [a for a in args if a != "--no-bridge"]
    if any(a == "--weave-bridge" or a.startswith("--weave-bridge=") for a in args):
        return list(args)
    return ["--weave-bridge", "weave", *args]


PROXY_SOCKET = "unix:///var/run/weave/weave.sock"


def daemon_env(env: dict[str, str]) -> dict[str, str]:
    """The router talks to the real daemon: if this shell points docker at the proxy
    (``eval $(weave env)``), the daemon is the one it pointed at before."""
    if env.get("DOCKER_HOST") == PROXY_SOCKET and "ORIG_DOCKER_HOST" in env:
        env = dict(env)
        orig = env.pop("ORIG_DOCKER_HOST")
        if orig:
            env["DOCKER_HOST"] = orig
        else:
            env.pop("DOCKER_HOST")
    return env


def spawn(config: LaunchConfig) -> tuple[Router, Path, int]:
    """Start the router detached; return (process, log path, log offset at start)."""
    state = Path(config.state_dir)
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = state / LOG_FILE
    flags = ["--http-addr", config.http_addr, "--state-dir", config.state_dir]
    flags += _with_bridge(config.args)
    proc: Router
    with log_path.open("ab") as log:
        offset = log.tell()
        if forks_router():
            proc = fork_router(flags, log.fileno(), daemon_env(config.env))
        else:
            proc = subprocess.Popen(
                [*router_command(), *flags],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=daemon_env(config.env),
            )
    _write_pid(config.state_dir, proc.pid)
    return proc, log_path, offset


def wait_until_up(
    proc: Router,
    config: LaunchConfig,
    log: tuple[Path, int],
    progress: TextIO,
    timeout: float = LAUNCH_TIMEOUT,
) -> None:
    """Until ``GET /status`` answers 200; LaunchError if the router dies. A forked router
    says when it is up (weavenet.launch_ready); any other is polled."""
    progress.write("Waiting for weave router to start...")
    progress.flush()
    try:
        if isinstance(proc, ForkedRouter):
            _wait_for_fork(proc, config, log, progress, timeout)
        else:
            _poll_until_up(proc, config, log, progress, timeout)
    finally:
        progress.write("\n")
        progress.flush()


def _wait_for_fork(
    proc: ForkedRouter,
    config: LaunchConfig,
    log: tuple[Path, int],
    progress: TextIO,
    timeout: float,
) -> None:
    def dot() -> None:
        progress.write(".")
        progress.flush()

    started = time.monotonic()
    try:
        said = wait_ready(proc.ready_fd, timeout, dot)
    finally:
        os.close(proc.ready_fd)
    if said is Ready.READY and router_answers(config.http_addr, timeout=1.0) == 200:
        return
    if said is Ready.CLOSED:  # it exited (its status is there a moment later) or gave up
        code = _exit_status(proc, deadline=time.monotonic() + 5.0)
        if code is not None:
            raise LaunchError(_died_message(code, log))
    left = timeout - (time.monotonic() - started)
    _poll_until_up(proc, config, log, progress, max(left, 1.0))


def _exit_status(proc: Router, deadline: float) -> int | None:
    while (code := proc.poll()) is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the child closed its pipe on the way out: reaped in a moment
    return code


def _poll_until_up(
    proc: Router, config: LaunchConfig, log: tuple[Path, int], progress: TextIO, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    last_status: int | None = None
    interval = FIRST_POLL
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise LaunchError(_died_message(code, log))
        last_status = router_answers(config.http_addr, timeout=1.0)
        if last_status == 200:
            return
        progress.write(".")
        progress.flush()
        time.sleep(interval)
        interval = min(interval * 1.5, LAST_POLL)
    state = "answers but is not ready" if last_status else "does not answer"
    raise LaunchError(
        f"weave router (pid {proc.pid}) {state} on {config.http_addr} after {timeout:g}s; "
        f"see {log[0]} or stop it with 'weave stop'"
    )


def _died_message(returncode: int, log: tuple[Path, int]) -> str:
    tail = _tail(*log)
    message = f"The weave router exited with code {returncode}; see {log[0]} for details."
    return f"{tail}\n{message}" if tail else message


def launch(config: LaunchConfig, progress: TextIO) -> int:
    """Start the router unless it is already running; return its PID."""
    if read_pid(config.state_dir) is not None or router_answers(config.http_addr) is not None:
        raise LaunchError("weave is already running; you can stop it with 'weave stop'.", 3)
    proc, log_path, offset = spawn(config)
    try:
        wait_until_up(proc, config, (log_path, offset), progress)
    except LaunchError:
        if proc.poll() is not None:
            with contextlib.suppress(OSError):
                Path(config.state_dir, PID_FILE).unlink()
        raise
    return proc.pid


def _wait_gone(pid: int, timeout: float, sleep: Callable[[float], None] = time.sleep) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        sleep(POLL_INTERVAL)
    return not _pid_alive(pid)


def stop(state_dir: str, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM the router, SIGKILL after ``timeout``; False if it was not running."""
    pid = read_pid(state_dir)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, timeout)
    with contextlib.suppress(OSError):
        Path(state_dir, PID_FILE).unlink()
    return True
