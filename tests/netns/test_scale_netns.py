"""30 routers with the data plane, chain-started, and full connectivity (issue 10, acceptance 5).

Thirty host namespaces each run a router started by the real `weave launch` (bridge on,
fastdp by default), host k given only host k-1: discovery must build the full mesh. Once
every router sees 30 peers and 29 established connections, one container per host is
attached by `weave attach` (addresses from IPAM) and every container pings every other
one (870 pairs), all from this process over raw ICMP sockets opened in the containers.

Neighbour table: every namespace shares the kernel's table and its limit (gc_thresh3 =
1024 dynamic entries, /work/shared/platform.md). 30 hosts meshed and 30 containers
pinging each other would need 1,740 dynamic entries. So the hosts and the containers get
*permanent* entries for each other (the kernel exempts permanent entries from that
limit): no ARP, no overflow, and no pressure on other tests' namespaces.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field

import pytest

from weavenet.dataplane.netlink import run_in_netns
from weavenet.harness import Cluster, Container, Host, Netns, random_prefix, venv_bin, wait_until
from weavenet.harness.ping import ICMP_ECHO_REPLY, echo_request
from weavenet.harness.util import pid_alive

HOSTS = 30
# Generous: on a 2-core machine shared with other work, 30 routers starting at once
# have taken 220 s (about 60 s on a quiet one).
LAUNCH_TIMEOUT = 420.0
MESH_TIMEOUT = 240.0
ATTACH_TIMEOUT = 240.0
PING_TIMEOUT = 90.0
pytestmark = pytest.mark.timeout(1200)


def _run_all(commands: Sequence[tuple[Netns, list[str]]], timeout: float) -> list[str]:
    """Run every command at once, each in its namespace; their stdout. Output goes to
    files, not pipes: `weave launch` leaves a router behind that would hold a pipe."""
    with ExitStack() as stack:
        files = [
            (
                stack.enter_context(tempfile.TemporaryFile()),
                stack.enter_context(tempfile.TemporaryFile()),
            )
            for _ in commands
        ]
        procs = [
            subprocess.Popen(
                ns.exec_argv(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=ns.env
            )
            for (ns, argv), (out, err) in zip(commands, files, strict=True)
        ]
        stack.callback(_kill_leftovers, procs)
        deadline = time.monotonic() + timeout
        outputs = []
        for proc, (ns, argv), (out, err) in zip(procs, commands, files, strict=True):
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            out.seek(0)
            err.seek(0)
            text, problem = out.read().decode(), err.read().decode()
            assert code == 0, f"{ns.netns}: {' '.join(argv)} exited {code}: {problem}{text}"
            outputs.append(text)
        return outputs


def _kill_leftovers(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:  # ours: started above, still running only after a failure
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _mac(ns: Netns, dev: str) -> str:
    links = json.loads(ns.run(["ip", "-j", "link", "show", dev]).stdout)
    return str(links[0]["address"])


def _permanent_neighbours(members: Sequence[tuple[Netns, str, str]], dev: str) -> None:
    """Give each namespace a permanent entry on ``dev`` for every other (ip, mac)."""
    for ns, own_ip, _ in members:
        lines = [
            f"neigh replace {ip} lladdr {mac} dev {dev} nud permanent"
            for _, ip, mac in members
            if ip != own_ip
        ]
        ns.run(["ip", "-batch", "-"], input="\n".join(lines) + "\n")


def _launch_chain(hosts: Sequence[Host]) -> None:
    """`weave launch` on every host at once, host k given host k-1 (host 1: no peer)."""
    weave = str(venv_bin() / "weave")
    commands: list[tuple[Netns, list[str]]] = [
        (host, [weave, "launch", "--nickname", host.name, *([hosts[i - 1].ip] if i else [])])
        for i, host in enumerate(hosts)
    ]
    _run_all(commands, LAUNCH_TIMEOUT)


_CONNECTIONS = re.compile(r"^ *Connections: \d+ \((\d+) established", re.M)
_PEERS = re.compile(r"^ *Peers: (\d+) \(with (\d+) established connections\)", re.M)


def _mesh_counts(host: Host) -> tuple[int, int, int]:
    """(peers, established connections in the topology, our established connections)
    from the router's `/status`, asked from this process over a socket opened in the
    host's namespace (30 `weave status` processes per poll would load the machine)."""
    sock = run_in_netns(host.netns, lambda: socket.create_connection(("127.0.0.1", 6784), 5))
    with sock:
        sock.settimeout(10)
        sock.sendall(b"GET /status HTTP/1.0\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    text = b"".join(chunks).decode(errors="replace")
    peers, conns = _PEERS.search(text), _CONNECTIONS.search(text)
    if peers is None or conns is None:
        return 0, 0, 0  # not answering properly yet
    return int(peers.group(1)), int(peers.group(2)), int(conns.group(1))


def _wait_full_mesh(hosts: Sequence[Host]) -> None:
    n = len(hosts)
    full = (n, n * (n - 1), n - 1)
    last: dict[str, object] = {}

    def converged() -> bool:
        for host in hosts:
            try:
                last[host.name] = _mesh_counts(host)
            except OSError as exc:
                last[host.name] = exc
        return all(value == full for value in last.values())

    wait_until(
        converged,
        MESH_TIMEOUT,
        interval=1.0,
        message=f"{n} routers did not converge to a full mesh {full}",
        describe=lambda: {name: v for name, v in last.items() if v != full},
    )


@dataclass
class _Pinger:
    """Echo requests from one container to many addresses over one raw socket."""

    container: Container
    ident: int
    sock: socket.socket
    answered: set[str] = field(default_factory=set)

    def send(self, targets: Sequence[str]) -> None:
        for seq, dst in enumerate(targets):
            if dst not in self.answered:
                self.sock.sendto(echo_request(self.ident, seq, 56), (dst, 0))

    def receive(self) -> None:
        while True:
            try:
                packet = self.sock.recv(65535)
            except BlockingIOError:
                return
            ihl = (packet[0] & 0x0F) * 4
            kind, _, _, ident, _ = struct.unpack("!BBHHH", packet[ihl : ihl + 8])
            if kind == ICMP_ECHO_REPLY and ident == self.ident:
                self.answered.add(socket.inet_ntoa(packet[12:16]))


def _open_pinger(container: Container, ident: int) -> _Pinger:
    def opened() -> socket.socket:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)

    sock = run_in_netns(container.netns, opened)
    sock.setblocking(False)
    return _Pinger(container, ident, sock)


def _unanswered_pings(containers: Sequence[Container], ips: Sequence[str]) -> list[str]:
    """Every container pings every other one, resending to the silent ones each round
    until all answered or PING_TIMEOUT; returns the pairs that never answered."""
    pingers = [_open_pinger(c, 0x5300 + i) for i, c in enumerate(containers)]
    wanted = {
        p.container.netns: [ip for ip in ips if ip != own]
        for p, own in zip(pingers, ips, strict=True)
    }
    deadline = time.monotonic() + PING_TIMEOUT
    try:
        while time.monotonic() < deadline:
            missing = [p for p in pingers if len(p.answered) < len(wanted[p.container.netns])]
            if not missing:
                break
            for pinger in missing:
                pinger.send(wanted[pinger.container.netns])
            round_end = time.monotonic() + 1.0
            while (left := round_end - time.monotonic()) > 0:
                ready, _, _ = select.select([p.sock for p in pingers], [], [], left)
                for pinger in pingers:
                    if pinger.sock in ready:
                        pinger.receive()
    finally:
        for pinger in pingers:
            pinger.sock.close()
    return [
        f"{p.container.netns} -> {ip}"
        for p in pingers
        for ip in wanted[p.container.netns]
        if ip not in p.answered
    ]


def _stop_all(hosts: Sequence[Host]) -> None:
    """SIGTERM every router at once, by the pid it recorded (checked to live in that
    host's namespace), and wait for them to exit: 30 `weave stop` processes on a
    loaded machine took over a minute."""
    pids = [pid for pid in (h.router_pid() for h in hosts) if pid is not None]
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    wait_until(
        lambda: not any(pid_alive(pid) for pid in pids),
        60.0,
        interval=0.2,
        message="routers still running after SIGTERM",
    )


def test_thirty_routers_with_the_data_plane_reach_each_other(
    cluster: Callable[..., Cluster],
) -> None:
    start = time.monotonic()

    def phase(name: str) -> None:  # printed with the test's output if it fails
        print(f"{time.monotonic() - start:6.1f} s  {name}", flush=True)

    c = cluster(HOSTS, prefix=f"ss{random_prefix()}")
    hosts = c.hosts
    _permanent_neighbours([(h, h.ip, _mac(h, "eth0")) for h in hosts], "eth0")
    phase("30 hosts with permanent neighbours")
    try:
        _launch_chain(hosts)
        phase("30 routers launched, chain-started")
        _wait_full_mesh(hosts)
        phase("full mesh: 30 peers, 870 connections")
        hosts[0].weave("prime", "--timeout", "120", timeout=150)  # one ring, then 30 claims
        phase("IPAM ring ready")
        containers = [h.add_container("c") for h in hosts]
        weave = str(venv_bin() / "weave")
        attach = [
            (h, [weave, "attach", f"netns:{ct.netns}"])
            for h, ct in zip(hosts, containers, strict=True)
        ]
        ips = [out.strip() for out in _run_all(attach, ATTACH_TIMEOUT)]
        assert len(set(ips)) == HOSTS and all(len(ip.split()) == 1 for ip in ips), ips
        members = [(ct, ip, _mac(ct, "ethwe")) for ct, ip in zip(containers, ips, strict=True)]
        _permanent_neighbours(members, "ethwe")
        phase("30 containers attached")
        assert _unanswered_pings(containers, ips) == []
        phase("870 pairs answered")
    finally:
        _stop_all(hosts)
        phase("routers stopped")
