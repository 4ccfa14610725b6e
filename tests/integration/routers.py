"""Real `weaver` processes on loopback for integration tests.

Each router gets a random 127.0.0.x address and free ports, so parallel pytest workers
never collide. Its stderr goes to a file the tests can read; `stop()` kills the whole
process group. Waiting is always a poll for a condition with a deadline.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from weavenet.harness.util import venv_bin

T = TypeVar("T")

START_TIMEOUT = 60.0  # a loaded machine (coverage, parallel workers) starts routers slowly
_TERMINATIONS = re.compile(r"^weave_connection_terminations_total (\S+)$", re.M)


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def pick_host() -> str:
    """A random loopback address other than 127.0.0.1."""
    return f"127.0.0.{random.randint(2, 250)}"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RouterDied(RuntimeError):
    """The weaver process exited before it became ready."""


@dataclass
class RouterProc:
    """One running `weaver`, its addresses and its log file."""

    name: str
    nickname: str
    host: str
    port: int
    http_port: int
    state_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ---- process -------------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL if it lingers."""
        proc = self.proc
        if proc is None:
            return
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        proc.wait(5.0)

    # ---- HTTP API ------------------------------------------------------------------
    def http(
        self,
        method: str,
        path: str,
        form: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
    ) -> tuple[int, str]:
        conn = http.client.HTTPConnection(self.host, self.http_port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            body = None
            if form is not None:
                body = urlencode(form, doseq=True)
                hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def report(self) -> dict[str, Any]:
        status, body = self.http("GET", "/report", headers={"Accept": "application/json"})
        assert status == 200, body
        result: dict[str, Any] = json.loads(body)
        return result

    def terminations(self) -> int:
        status, body = self.http("GET", "/metrics")
        assert status == 200, body
        match = _TERMINATIONS.search(body)
        assert match, body
        return int(float(match.group(1)))

    def established(self) -> dict[str, str]:
        """Established connections as {peer name: remote address}."""
        router = self.report()["Router"]
        peers = {p["Name"]: p for p in router["Peers"]}
        ours = peers.get(router["Name"], {}).get("Connections") or []
        return {c["Name"]: c["Address"] for c in ours if c["Established"]}

    def ready(self) -> bool:
        if not self.alive():
            raise RouterDied(f"weaver {self.nickname} exited:\n{self.log()[-3000:]}")
        try:
            return self.http("GET", "/status", timeout=1.0)[0] == 200
        except OSError:
            return False


def start_router(
    workdir: Path, index: int, peers: list[str] | None = None, extra: list[str] | None = None
) -> RouterProc:
    """Launch `weaver` with name 02:00:00:00:ii:ii; returns once /status answers.

    Free ports can race with other processes, so a router that dies at start-up is
    retried on fresh ports a couple of times.
    """
    for attempt in range(3):
        try:
            return _start_once(workdir, index, peers or [], extra or [])
        except RouterDied:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_once(workdir: Path, index: int, peers: list[str], extra: list[str]) -> RouterProc:
    host = pick_host()
    port = free_port(host)
    http_port = free_port(host)
    while http_port == port:
        http_port = free_port(host)
    nickname = f"r{index}"
    router = RouterProc(
        name=f"02:00:00:00:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}",
        nickname=nickname,
        host=host,
        port=port,
        http_port=http_port,
        state_dir=workdir / nickname,
        log_path=workdir / f"{nickname}.log",
    )
    argv = [
        str(venv_bin() / "weaver"),
        *("--name", router.name, "--nickname", nickname, "--host", host),
        *("--port", str(router.port), "--state-dir", str(router.state_dir)),
        *("--http-addr", f"{host}:{router.http_port}", *extra, *peers),
    ]
    with router.log_path.open("wb") as log:
        router.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    try:
        wait_for(router.ready, START_TIMEOUT, f"weaver {nickname} to answer /status")
    except BaseException:
        router.stop()
        raise
    return router


@contextmanager
def router_pair(
    workdir: Path, extra: list[str] | None = None
) -> Iterator[tuple[RouterProc, RouterProc]]:
    """Routers A and B (B given A as its peer), yielded once A-B is established."""
    started: list[RouterProc] = []
    try:
        a = start_router(workdir, 1, extra=extra)
        started.append(a)
        b = start_router(workdir, 2, peers=[a.address], extra=extra)
        started.append(b)
        wait_for(lambda: b.name in a.established(), 15.0, "A-B to be established")
        wait_for(lambda: a.name in b.established(), 15.0, "B-A to be established")
        yield a, b
    finally:
        for router in started:
            router.stop()
