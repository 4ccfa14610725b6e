"""Network-namespace test harness: an emulated LAN of hosts, each its own netns.

    with Cluster(3) as cluster:
        h1, h2, h3 = cluster.hosts
        h1.launch()
        h2.launch(h1.ip)
        print(h2.weave("status").stdout)

Layout for prefix P: netns "P-lan" holds bridge "br0"; each host netns "P-hN" has "eth0", a
veth into the bridge, with an underlay address; containers are netns "P-hN-NAME". Nothing is
configured in the root namespace. Teardown stops routers, kills every process left in our
namespaces, deletes the namespaces and the per-run temp dir /tmp/P.
"""

from __future__ import annotations

import atexit
import ipaddress
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from weavenet.harness.util import (
    pid_alive,
    random_prefix,
    run_cmd,
    sanitized_environ,
    venv_bin,
)

_LIVE: set[Cluster] = set()


class Netns:
    """A network namespace we created, with helpers to run commands inside it."""

    def __init__(self, name: str, env: dict[str, str] | None = None) -> None:
        self.netns = name
        self.env = env if env is not None else sanitized_environ()

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *map(str, argv)]

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside this namespace with this namespace's env (+ `env`)."""
        full_env = {**self.env, **(env or {})}
        return run_cmd(
            self.exec_argv(argv), check=check, timeout=timeout, input=input, env=full_env
        )

    def iptables(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `iptables -w ARGS` in this namespace (e.g. to inject loss on the underlay)."""
        return self.run(["iptables", "-w", *args], check=check)

    def ping(self, dst: str, count: int = 1, timeout: float = 2.0, size: int = 56) -> bool:
        """ICMP-ping `dst` from inside this namespace; True if any reply arrived."""
        argv = [sys.executable, "-m", "weavenet.harness.ping"]
        argv += ["-c", str(count), "-W", str(timeout), "-s", str(size), dst]
        proc = self.run(argv, check=False, timeout=count * timeout + 10)
        return proc.returncode == 0

    def pids(self) -> list[int]:
        """Processes currently running in this namespace."""
        proc = run_cmd(["ip", "netns", "pids", self.netns], check=False)
        return [int(p) for p in proc.stdout.split() if p.isdigit()]

    def owns_pid(self, pid: int) -> bool:
        """True if process `pid` lives in this network namespace."""
        try:
            ours = os.stat(f"/run/netns/{self.netns}")
            theirs = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            return False
        return (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)


class Container(Netns):
    """A 'container': a bare netns with lo up. `weave attach netns:NAME` wires it later."""

    def __init__(self, host: Host, name: str) -> None:
        super().__init__(f"{host.netns}-{name}", host.env)
        self.host = host
        self.name = name

    def __repr__(self) -> str:
        return f"Container({self.netns!r})"


class Host(Netns):
    """One emulated host: a netns on the LAN with its own router state dir."""

    def __init__(self, cluster: Cluster, index: int, ip: str, prefixlen: int) -> None:
        self.cluster = cluster
        self.index = index
        self.name = f"h{index}"
        self.ip = ip
        self.cidr = f"{ip}/{prefixlen}"
        self.state_dir = cluster.tmpdir / self.name
        env = sanitized_environ()
        env["WEAVE_STATE_DIR"] = str(self.state_dir)
        env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        super().__init__(f"{cluster.prefix}-{self.name}", env)
        self.launched = False
        self.containers: dict[str, Container] = {}

    def __repr__(self) -> str:
        return f"Host({self.name!r}, ip={self.ip!r})"

    # --- the weave CLI -------------------------------------------------------------------
    def weave(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `<venv>/bin/weave ARGS` in this host's netns with the host env."""
        return self.run([str(venv_bin() / "weave"), *args], check=check, timeout=timeout, env=env)

    def launch(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`weave launch ARGS` (adds `--nickname <host name>` unless given, and
        `--proxy=false` unless a proxy flag is given: these hosts share the machine's
        filesystem, so a proxy would put its socket in the real /var/run/weave)."""
        argv = list(args)
        if not any(a == "--nickname" or a.startswith("--nickname=") for a in argv):
            argv = ["--nickname", self.name, *argv]
        if not any(a in ("--proxy", "--no-proxy", "-H") or a.startswith("--proxy=") for a in argv):
            argv = ["--proxy=false", *argv]
        self.launched = True
        return self.weave("launch", *argv, check=check, timeout=60, env=env)

    def stop(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.weave("stop", check=check)

    def status(self, *sub: str) -> str:
        return self.weave("status", *sub).stdout

    def report(self) -> dict[str, Any]:
        """`weave report` parsed as JSON."""
        data: dict[str, Any] = json.loads(self.weave("report").stdout)
        return data

    def log(self) -> str:
        """The router log (<state_dir>/weaver.log), '' if absent."""
        try:
            return (self.state_dir / "weaver.log").read_text(errors="replace")
        except OSError:
            return ""

    def router_pid(self) -> int | None:
        """The pid in <state_dir>/weaver.pid if it names a live process in this netns."""
        try:
            pid = int((self.state_dir / "weaver.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) and self.owns_pid(pid) else None

    # --- processes and containers --------------------------------------------------------
    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a background process in this netns; it is killed at teardown."""
        kwargs.setdefault("env", self.env)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("start_new_session", True)
        proc: subprocess.Popen[Any] = subprocess.Popen(self.exec_argv(argv), **kwargs)
        self.cluster.procs.append(proc)
        return proc

    def add_container(self, name: str) -> Container:
        """Create (and track) the container netns `<prefix>-<host>-<name>` with lo up."""
        if name in self.containers:
            raise ValueError(f"container {name!r} already exists on {self.name}")
        container = Container(self, name)
        self.cluster.add_netns(container.netns)
        self.containers[name] = container
        return container

    def remove_container(self, name: str) -> None:
        container = self.containers.pop(name)
        self.cluster.delete_netns(container)


class Cluster:
    """N hosts on one emulated LAN. Use as a context manager; teardown is robust."""

    def __init__(
        self, n_hosts: int, prefix: str | None = None, underlay: str | None = None
    ) -> None:
        self.prefix = prefix or random_prefix()
        net = ipaddress.ip_network(underlay or f"172.31.{random.randint(0, 255)}.0/24")
        if n_hosts < 1 or n_hosts > net.num_addresses - 2:
            raise ValueError(f"cannot fit {n_hosts} hosts in {net}")
        self.n_hosts = n_hosts
        self.underlay = net
        self.tmpdir = Path("/tmp") / self.prefix
        self.lan = Netns(f"{self.prefix}-lan")
        self.hosts: list[Host] = []
        self.procs: list[subprocess.Popen[Any]] = []
        self._netns: list[str] = []  # created by us, in creation order
        self._tmp_created = False
        self.closed = False

    def __repr__(self) -> str:
        return f"Cluster({self.prefix!r}, hosts={self.hosts!r})"

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]

    # --- setup ---------------------------------------------------------------------------
    def start(self) -> None:
        """Build the LAN and the hosts; on any failure tear down what was built."""
        _LIVE.add(self)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        self.tmpdir.mkdir(parents=True, exist_ok=False)
        self._tmp_created = True
        self.add_netns(self.lan.netns)
        self._ip(self.lan.netns, "link", "add", "br0", "type", "bridge")
        self._ip(self.lan.netns, "link", "set", "br0", "up")
        hosts = itertools.islice(self.underlay.hosts(), self.n_hosts)
        for index, addr in enumerate(hosts, start=1):
            self._add_host(index, str(addr))

    def _add_host(self, index: int, ip: str) -> Host:
        host = Host(self, index, ip, self.underlay.prefixlen)
        host.state_dir.mkdir(parents=True)
        self.add_netns(host.netns)
        self.hosts.append(host)
        lan_end = f"v{host.name}"
        self._ip(self.lan.netns, "link", "add", lan_end, "type", "veth", "peer", "name", "eth0",
                 "netns", host.netns)  # fmt: skip
        self._ip(self.lan.netns, "link", "set", lan_end, "master", "br0", "up")
        self._ip(host.netns, "addr", "add", host.cidr, "dev", "eth0")
        self._ip(host.netns, "link", "set", "eth0", "up")
        return host

    @staticmethod
    def _ip(netns: str, *args: str) -> None:
        run_cmd(["ip", "-n", netns, *args])

    def add_netns(self, name: str) -> None:
        """Create netns `name` (which must start with our prefix), track it, bring lo up."""
        if not name.startswith(self.prefix + "-"):
            raise ValueError(f"netns {name!r} outside this run's prefix {self.prefix!r}")
        run_cmd(["ip", "netns", "add", name])
        self._netns.append(name)
        self._ip(name, "link", "set", "lo", "up")

    def delete_netns(self, ns: Netns) -> None:
        """Kill processes left in `ns` and delete it (only if we created it)."""
        if ns.netns not in self._netns:
            return
        _kill_pids([p for p in ns.pids() if ns.owns_pid(p)])
        run_cmd(["ip", "netns", "del", ns.netns], check=False)
        self._netns.remove(ns.netns)

    def iptables(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """iptables in the LAN namespace (bridged underlay traffic passes its FORWARD chain)."""
        return self.lan.iptables(*args, check=check)

    # --- teardown ------------------------------------------------------------------------
    def close(self) -> None:
        """Tear down everything; safe to call repeatedly and after a half-done setup."""
        if self.closed:
            return
        errors: list[str] = []
        with _sigint_deferred():
            for step in (self._stop_routers, self._kill_procs, self._delete_all_netns):
                try:
                    step()
                except Exception as exc:  # keep going: later steps must still run
                    errors.append(f"{step.__name__}: {exc}")
            if self._tmp_created:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.closed = True
            _LIVE.discard(self)
        if errors:
            print(f"harness teardown of {self.prefix}: " + "; ".join(errors), file=sys.stderr)

    def _stop_routers(self) -> None:
        for host in self.hosts:
            if not host.launched and host.router_pid() is None:
                continue
            with suppress(subprocess.TimeoutExpired):
                host.weave("stop", check=False, timeout=15)
            pid = host.router_pid()
            if pid is not None:
                _kill_pids([pid])

    def _kill_procs(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                _terminate(proc)
        self.procs.clear()

    def _delete_all_netns(self) -> None:
        namespaces: list[Netns] = [c for h in self.hosts for c in h.containers.values()]
        namespaces += [*self.hosts, self.lan]
        for ns in namespaces:
            self.delete_netns(ns)
        for name in list(self._netns):  # anything created but not yet wrapped in an object
            self.delete_netns(Netns(name))


def _terminate(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _kill_pids(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM `pids` (already checked to be ours), then SIGKILL whatever is still alive."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in pids if pid_alive(p)]
        for pid in alive:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if pid_alive(p)]
            if alive:
                time.sleep(0.05)
        if not alive:
            return


def kill_pids(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM then SIGKILL processes the caller made sure are its own (the Docker harness)."""
    _kill_pids(pids, grace)


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold off Ctrl-C during teardown (main thread only); re-raise it afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


@atexit.register
def _close_leftovers() -> None:
    for cluster in list(_LIVE):
        cluster.close()
