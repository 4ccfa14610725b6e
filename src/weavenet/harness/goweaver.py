"""A real Go weaver (Weave Net 2.8.1) in a harness host namespace, for interoperability tests.

    with InteropCluster(2) as cluster:
        go = cluster.go_weaver(cluster[0], binary, name="a2:00:00:00:00:01")
        go.start()
        cluster[1].launch(cluster[0].ip)
        print(go.report()["Router"]["Peers"])

How it runs the binary (see the README beside it): `unshare --pid --fork --mount-proc` gives it a
PID namespace of its own (it opens /proc/1/ns/net at start), CHECKPOINT_DISABLE=1 keeps it off the
internet, `--docker-api=` leaves Docker out, and every instance has its own working directory
(it writes restart.sentinel there) and `--db-prefix`. It is stopped by the PID of the weaver
process (the child of unshare); the bridge it made is deleted so the next run can make its own.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import msgspec

from weavenet.harness.netns import Cluster, Container, Host, Netns
from weavenet.harness.util import pid_alive, wait_until

GO_WEAVER_ENV = "GO_WEAVER"
GO_BRIDGE = "weave"
MULTICAST_ROUTE = "224.0.0.0/4"
_LOG_TAIL = 60

# Runs inside a namespace: one HTTP request, answer as JSON {"status": N, "body": "..."}.
_HTTP_CLIENT = r"""
import json, sys, urllib.error, urllib.request
method, url, data, headers, timeout = json.loads(sys.argv[1])
req = urllib.request.Request(url, method=method, headers=headers,
                             data=None if data is None else data.encode())
try:
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        status, body = resp.status, resp.read()
except urllib.error.HTTPError as err:
    status, body = err.code, err.read()
print(json.dumps({"status": status, "body": body.decode(errors="replace")}))
"""


def default_go_weaver() -> Path:
    """../shared/anchor/weaver relative to the repository root (what `make interop` uses)."""
    return Path(__file__).resolve().parents[3].parent / "shared" / "anchor" / "weaver"


def go_weaver_unusable_reason(binary: Path) -> str | None:
    """Why `binary` cannot run as a Go weaver here, or None if it can."""
    if not binary.is_file():
        return f"no Go weaver at {binary} (set {GO_WEAVER_ENV}=PATH)"
    if not os.access(binary, os.X_OK):
        return f"{binary} is not executable"
    for tool in ("unshare", "ethtool"):
        if shutil.which(tool) is None:
            return f"needs {tool} (make interop installs it)"
    env = {**os.environ, "CHECKPOINT_DISABLE": "1"}
    try:
        proc = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=20, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{binary} --version failed: {exc}"
    if proc.returncode != 0 or "weave" not in proc.stdout.lower():
        err = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return f"{binary} --version exited {proc.returncode}: {' '.join(err)} (libpcap0.8?)"
    return None


# --- HTTP, from inside a namespace -----------------------------------------------------------
class HttpReply(msgspec.Struct, frozen=True):
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    ns: Netns,
    method: str,
    url: str,
    data: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> HttpReply:
    """One HTTP request made from inside `ns` (a router's API listens on its loopback)."""
    spec = json.dumps([method, url, data, headers or {}, timeout])
    proc = ns.run([sys.executable, "-c", _HTTP_CLIENT, spec], timeout=timeout + 15)
    reply = json.loads(proc.stdout)
    return HttpReply(int(reply["status"]), str(reply["body"]))


class HttpApi:
    """A Weave router's HTTP API at `addr` (host:port) in namespace `ns`; Go's or ours."""

    def __init__(self, ns: Netns, addr: str) -> None:
        self.ns = ns
        self.addr = addr

    def request(
        self, method: str, path: str, data: str | None = None, timeout: float = 10.0
    ) -> HttpReply:
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = f"http://{self.addr}{path}"
        return http_request(self.ns, method, url, data, headers, timeout)

    def ok(self, method: str, path: str, data: str | None = None, timeout: float = 10.0) -> str:
        """The body of a 2xx answer; RuntimeError with the status and body otherwise."""
        reply = self.request(method, path, data, timeout)
        if not 200 <= reply.status < 300:
            raise RuntimeError(f"{method} {path} on {self.addr}: {reply.status} {reply.body}")
        return reply.body

    def status(self) -> str:
        return self.ok("GET", "/status")

    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.ok("GET", "/report"))
        return data

    def allocate(self, ident: str, timeout: float = 60.0) -> str:
        """POST /ip/<ident>: an address in the default subnet (blocks until the ring is ready)."""
        return self.ok("POST", f"/ip/{ident}", timeout=timeout).strip()

    def claim(self, ident: str, cidr: str, timeout: float = 60.0) -> None:
        """PUT /ip/<ident>/<ip>/<prefixlen>: claim that exact address."""
        self.ok("PUT", f"/ip/{ident}/{cidr}", timeout=timeout)

    def owned(self, ident: str) -> str:
        """GET /ip/<ident>: the CIDRs `ident` owns in the default subnet, space-separated."""
        return self.ok("GET", f"/ip/{ident}").strip()

    def prime(self, timeout: float = 60.0) -> None:
        """GET /ring: returns once the IPAM ring exists."""
        self.ok("GET", "/ring", timeout=timeout)

    def add_name(self, ident: str, ip: str, fqdn: str) -> None:
        """PUT /name/<ident>/<ip> with fqdn=...: a DNS entry (needs DNS on)."""
        self.ok("PUT", f"/name/{ident}/{ip}", data=f"fqdn={fqdn}")

    def names(self) -> list[dict[str, Any]]:
        """GET /name (JSON): every DNS entry this router knows, tombstones included."""
        entries: list[dict[str, Any]] = json.loads(self.ok("GET", "/name") or "[]") or []
        return entries


# --- the Go router ---------------------------------------------------------------------------
class GoWeaver:
    """One Go weaver process in `host`'s namespace. start() and stop() may be repeated."""

    def __init__(
        self,
        host: Host,
        binary: Path,
        name: str,
        nickname: str | None = None,
        password: str | None = None,
        peers: Sequence[str] = (),
        args: Sequence[str] = (),
        http_addr: str = "127.0.0.1:6784",
        status_addr: str = "127.0.0.1:6782",
    ) -> None:
        self.host = host
        self.binary = binary
        self.name = name
        self.nickname = nickname or f"go{host.name}"
        self.password = password
        self.peers = list(peers)
        self.args = list(args)
        self.state_dir = host.cluster.tmpdir / f"{host.name}-go"
        self.api = HttpApi(host, http_addr)
        self.status_api = HttpApi(host, status_addr)  # /status, /report, /metrics only
        self._proc: subprocess.Popen[Any] | None = None
        self._pid: int | None = None

    def __repr__(self) -> str:
        return f"GoWeaver({self.host.name!r}, name={self.name!r})"

    def argv(self) -> list[str]:
        argv = ["unshare", "--pid", "--fork", "--mount-proc", "env", "CHECKPOINT_DISABLE=1"]
        argv += [str(self.binary), "--port=6783", f"--name={self.name}"]
        argv += [f"--nickname={self.nickname}", "--docker-api=", "--datapath=datapath"]
        argv += [f"--weave-bridge={GO_BRIDGE}", f"--http-addr={self.api.addr}"]
        argv += [f"--status-addr={self.status_api.addr}", f"--db-prefix={self.state_dir}/weave"]
        if not any(a.startswith("--ipalloc-range") for a in self.args):
            argv.append("--ipalloc-range=")
        if not any(a.startswith("--dns") for a in self.args):
            argv.append("--no-dns")
        return [*argv, *self.args, *self.peers]

    def start(self, timeout: float = 30.0) -> None:
        """Start it with the peers given (no restart.sentinel: not a "resume") and wait until
        its HTTP API answers. Persisted data (peers, IPAM ring) stays unless reset()."""
        if self.running():
            raise RuntimeError(f"{self} is already running")
        remove_go_bridge(self.host)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "restart.sentinel").unlink(missing_ok=True)
        env = dict(self.host.env)
        if self.password is not None:
            env["WEAVE_PASSWORD"] = self.password  # off the command line, as `weave launch`
        log = (self.state_dir / "weaver.log").open("ab")
        with log:
            self._proc = self.host.popen(
                self.argv(), cwd=self.state_dir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._pid = None
        wait_until(self._answers, timeout, interval=0.2, message=f"{self} HTTP API",
                   describe=self.log_tail)  # fmt: skip

    def _answers(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"{self} exited {self._proc.returncode}:\n{self.log_tail()}")
        try:
            return self.api.request("GET", "/status", timeout=2.0).status in (200, 503)
        except Exception:
            return False

    def pid(self) -> int | None:
        """The weaver process (child of unshare), by its PID in our PID namespace."""
        if self._pid is not None and pid_alive(self._pid):
            return self._pid
        if self._proc is None or self._proc.poll() is not None:
            return None
        children = _children(self._proc.pid)
        self._pid = children[0] if children else None
        return self._pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the weaver by PID (SIGKILL after `grace`), reap unshare, delete its bridge."""
        if self._proc is None:
            return
        pid = self.pid()
        if pid is not None and self.host.owns_pid(pid):
            _signal_until_gone(pid, grace)
        try:
            self._proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc, self._pid = None, None
        remove_go_bridge(self.host)
        remove_go_firewall(self.host)

    def reset(self) -> None:
        """Stop it and delete its persisted data (peers, IPAM ring), as `weave reset`."""
        self.stop()
        (self.state_dir / "weavedata.db").unlink(missing_ok=True)
        (self.state_dir / "restart.sentinel").unlink(missing_ok=True)

    def log(self) -> str:
        try:
            return (self.state_dir / "weaver.log").read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = _LOG_TAIL) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def status(self) -> str:
        return self.api.status()

    def report(self) -> dict[str, Any]:
        return self.api.report()

    def connect(self, *peers: str) -> None:
        self.api.ok("POST", "/connect", data="&".join(f"peer={p}" for p in peers))


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _signal_until_gone(pid: int, grace: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pid_alive(pid):
            return


def remove_go_bridge(host: Host) -> None:
    """What `weave reset` deletes: the bridge and its vethwe-bridge pair (if present)."""
    for link in ("vethwe-bridge", GO_BRIDGE):
        host.run(["ip", "link", "del", link], check=False)


def remove_go_firewall(host: Host) -> None:
    """Delete the iptables rules and WEAVE* chains a Go weaver added in `host`'s namespace."""
    for table in ("filter", "nat", "mangle"):
        rules = host.iptables("-t", table, "-S", check=False).stdout.splitlines()
        chains = [r.split()[1] for r in rules if r.startswith("-N WEAVE")]
        for rule in rules:
            words = shlex.split(rule)
            if words[:1] == ["-A"] and words[1] not in chains and _is_weave_rule(words):
                host.iptables("-t", table, "-D", *words[1:], check=False)
        for flag in ("-F", "-X"):
            for chain in chains:
                host.iptables("-t", table, flag, chain, check=False)


def _is_weave_rule(words: list[str]) -> bool:
    return any(w.startswith("WEAVE") or w == GO_BRIDGE or "Weave Net" in w for w in words)


# --- containers on the Go router's bridge ----------------------------------------------------
def attach_go_container(host: Host, name: str, *cidrs: str) -> Container:
    """A new container netns on `host` wired to the Go router's bridge as its `weave attach`."""
    container = host.add_container(name)
    mtu = bridge_mtu(host)
    outside, inside = f"vethwg{len(host.containers)}", f"wg{len(host.containers)}tmp"
    host.run(["ip", "link", "add", outside, "mtu", str(mtu), "type", "veth",
              "peer", "name", inside, "mtu", str(mtu)])  # fmt: skip
    host.run(["ip", "link", "set", outside, "master", GO_BRIDGE])
    host.run(["ip", "link", "set", outside, "type", "bridge_slave", "hairpin", "on"])
    host.run(["ip", "link", "set", outside, "up"])
    host.run(["ip", "link", "set", inside, "netns", container.netns])
    container.run(["ip", "link", "set", inside, "name", "ethwe"])
    # The Go sleeve captures frames before the kernel fills in checksums: offload must be off.
    container.run(["ethtool", "-K", "ethwe", "tx", "off"])
    container.run(["ip", "link", "set", "ethwe", "up"])
    for cidr in cidrs:
        container.run(["ip", "addr", "add", cidr, "dev", "ethwe"])
    container.run(["ip", "route", "add", MULTICAST_ROUTE, "dev", "ethwe"])
    return container


def add_go_address(container: Container, cidr: str) -> None:
    container.run(["ip", "addr", "add", cidr, "dev", "ethwe"])


def bridge_mtu(host: Host, bridge: str = GO_BRIDGE) -> int:
    proc = host.run(["ip", "-j", "link", "show", bridge])
    return int(json.loads(proc.stdout)[0]["mtu"])


def interface_mtu(ns: Netns, ifname: str = "ethwe") -> int:
    proc = ns.run(["ip", "-j", "link", "show", ifname])
    return int(json.loads(proc.stdout)[0]["mtu"])


# --- a cluster that also owns Go weavers -----------------------------------------------------
class InteropCluster(Cluster):
    """A Cluster whose teardown first stops every Go weaver made through it (even on failure)."""

    def __init__(self, n_hosts: int, **kwargs: Any) -> None:
        super().__init__(n_hosts, **kwargs)
        self.go_weavers: list[GoWeaver] = []

    def go_weaver(self, host: Host, binary: Path, name: str, **kwargs: Any) -> GoWeaver:
        go = GoWeaver(host, binary, name, **kwargs)
        self.go_weavers.append(go)
        return go

    def close(self) -> None:
        if not self.closed:
            for go in self.go_weavers:
                try:
                    go.stop()
                except Exception as exc:  # the namespaces must still go: keep tearing down
                    print(f"harness teardown: stopping {go}: {exc}", file=sys.stderr)
        super().close()


__all__ = [
    "GO_WEAVER_ENV",
    "GoWeaver",
    "HttpApi",
    "HttpReply",
    "InteropCluster",
    "add_go_address",
    "attach_go_container",
    "bridge_mtu",
    "default_go_weaver",
    "go_weaver_unusable_reason",
    "http_request",
    "interface_mtu",
    "remove_go_bridge",
    "remove_go_firewall",
]
