"""Small helpers shared by the namespace harness: paths, command runner, polling."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")

_OUTPUT_LIMIT = 4000
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def venv_bin() -> Path:
    """The bin directory of the virtualenv that holds the `weave`/`weaver` scripts.

    Works from pytest, `make test` and scripts: tries the running interpreter's directory
    (not resolved, so a venv symlink still points into the venv), then sys.prefix, then the
    repository's .venv.
    """
    candidates = [
        Path(sys.executable).parent,
        Path(sys.prefix) / "bin",
        Path(__file__).resolve().parents[3] / ".venv" / "bin",
    ]
    for cand in candidates:
        if (cand / "weave").exists():
            return cand
    return candidates[0]


def random_prefix() -> str:
    """A short unique prefix for one run's namespaces, e.g. 'wn3f9a'."""
    return "wn" + secrets.token_hex(2)


def _clip(text: str) -> str:
    if len(text) <= _OUTPUT_LIMIT:
        return text
    return "...\n" + text[-_OUTPUT_LIMIT:]


class CommandError(subprocess.CalledProcessError):
    """A failed command whose message includes its stdout and stderr."""

    def __str__(self) -> str:
        out, err = _clip(self.stdout or ""), _clip(self.stderr or "")
        return (
            f"command {self.cmd!r} exited {self.returncode}\n"
            f"--- stdout ---\n{out}\n--- stderr ---\n{err}"
        )


class CommandTimeout(subprocess.TimeoutExpired):
    """A command that ran past its timeout; the message includes its output so far."""

    def __str__(self) -> str:
        out = self.output if isinstance(self.output, str) else ""
        err = self.stderr if isinstance(self.stderr, str) else ""
        return (
            f"command {self.cmd!r} timed out after {self.timeout}s\n"
            f"--- stdout ---\n{_clip(out)}\n--- stderr ---\n{_clip(err)}"
        )


def _read(f: IO[bytes]) -> str:
    f.seek(0)
    return f.read().decode(errors="replace")


def run_cmd(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30.0,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command capturing output into temp files (not pipes).

    Files instead of pipes: a daemon that a command leaves behind (e.g. the router started
    by `weave launch`) may inherit stdout/stderr, and with pipes we would wait for its EOF.
    """
    args = [str(a) for a in argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(
                args,
                input=input.encode() if input is not None else None,
                stdin=None if input is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env) if env is not None else None,
                timeout=timeout,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            raise CommandTimeout(args, timeout, _read(out), _read(err)) from None
        stdout, stderr = _read(out), _read(err)
    if check and proc.returncode != 0:
        raise CommandError(proc.returncode, args, stdout, stderr)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.1,
    message: str = "condition not met",
    describe: Callable[[], object] | None = None,
) -> T:
    """Poll `predicate` until it returns a truthy value, which is returned.

    An exception raised by the predicate counts as "not yet" and is remembered as the last
    observed value. On timeout raises TimeoutError with `message` and the last observed
    value (or `describe()` when given, to report richer state).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            last, last_exc = value, None
            if value:
                return value
        except Exception as exc:  # a router not answering yet is "not yet", not an error
            last, last_exc = exc, exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if describe is not None:
        try:
            last = describe()
        except Exception as exc:
            last = f"(describe failed: {exc!r})"
    raise TimeoutError(f"{message} (timeout {timeout}s; last observed: {last})") from last_exc


def pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # state is the field after the parenthesised command name
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def sanitized_environ() -> dict[str, str]:
    """os.environ without WEAVE_* variables (the caller's settings must not leak in), and
    with the sbin directories on PATH (ip, iptables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEAVE_")}
    path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(os.pathsep)
    path += [d for d in _SBIN_DIRS if d not in path]
    env["PATH"] = os.pathsep.join(path)
    return env
