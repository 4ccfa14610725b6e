"""Helpers for the WeaveDNS namespace tests: attach with names, ask with dig and the C
library, tiny TCP servers and clients, a tiny upstream DNS server."""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from weavenet.harness import Container, Host, venv_bin

DOMAIN = "weave.local"
ATTACH_TIMEOUT = 240.0
PORT = 8080


def need_dig() -> None:
    """The test tier installs dig (make deps); without it CI fails, elsewhere we skip."""
    if shutil.which("dig") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("dig is missing: run 'make deps' (installs bind9-dnsutils)")
        pytest.skip("needs dig: run 'make deps' (installs bind9-dnsutils)")


def attach_all(pairs: Sequence[tuple[Host, Container]], *args: str) -> list[str]:
    """`weave attach ARGS netns:C` for every (host, container) at once; their IPs."""
    weave = str(venv_bin() / "weave")
    procs = [
        h.popen([weave, "attach", *args, f"netns:{c.netns}"], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
        for h, c in pairs
    ]  # fmt: skip
    ips = []
    for proc, (host, ct) in zip(procs, pairs, strict=True):
        out, err = proc.communicate(timeout=ATTACH_TIMEOUT)
        assert proc.returncode == 0, f"attach {ct.netns} on {host.name} failed: {err}"
        ips.append(out.strip())
    return ips


def resolv_conf(c: Container) -> Path:
    return Path("/etc/netns") / c.netns / "resolv.conf"


def nameserver(c: Container) -> str:
    for line in resolv_conf(c).read_text().splitlines():
        if line.startswith("nameserver "):
            return line.split()[1]
    raise AssertionError(f"no nameserver in {resolv_conf(c)}")


def dig(c: Container, *args: str) -> list[str]:
    """`dig +short ARGS` inside the container (through its resolv.conf)."""
    out = c.run(["dig", "+short", "+tries=1", "+time=2", *args], check=False).stdout
    return [line for line in out.split() if line]


def dig_many(c: Container, name: str, count: int, *flags: str) -> list[list[str]]:
    """`count` A queries for `name` from one dig process (-f); each answer's addresses."""
    batch = Path(f"/tmp/{c.netns}-dig.txt")
    batch.write_text(f"{name} A\n" * count)
    try:
        out = c.run(["dig", "+noall", "+question", "+answer", "+tries=1", "+time=2", *flags,
                     "-f", str(batch)], timeout=120).stdout  # fmt: skip
    finally:
        batch.unlink()
    answers: list[list[str]] = []
    for line in out.splitlines():
        if line.startswith(";"):  # the question: a new answer starts
            answers.append([])
        elif line.split()[-2:-1] == ["A"] and answers:
            answers[-1].append(line.split()[-1])
    return answers


def getent(c: Container, name: str) -> list[str]:
    out = c.run(["getent", "ahostsv4", name], check=False).stdout
    return sorted({line.split()[0] for line in out.splitlines() if line})


def popen_in(c: Container, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
    """A background process in the container, killed at teardown."""
    proc: subprocess.Popen[Any] = subprocess.Popen(
        c.exec_argv(argv), stdin=subprocess.DEVNULL, start_new_session=True, **kw
    )
    c.host.cluster.procs.append(proc)
    return proc


SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2]))); s.listen(64)
print("ready", flush=True)
while True:
    conn, _ = s.accept(); conn.sendall(sys.argv[1].encode()); conn.close()
"""

CLIENT = """
import collections, socket, sys
seen = collections.Counter()
for _ in range(int(sys.argv[3])):
    family, kind, proto, _, addr = socket.getaddrinfo(sys.argv[1], int(sys.argv[2]),
                                                      socket.AF_INET, socket.SOCK_STREAM)[0]
    with socket.create_connection(addr, timeout=5) as conn:
        seen[conn.recv(100).decode()] += 1
print(" ".join(f"{k}={v}" for k, v in sorted(seen.items())))
"""


def serve_identity(c: Container, identity: str) -> None:
    proc = popen_in(c, [sys.executable, "-c", SERVER, identity, str(PORT)],
                    stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"


def connect_many(c: Container, name: str, count: int) -> collections.Counter[str]:
    out = c.run([sys.executable, "-c", CLIENT, name, str(PORT), str(count)], timeout=300).stdout
    return collections.Counter({k: int(v) for k, v in (p.split("=") for p in out.split())})


UPSTREAM = """
import socket, sys, dns.message, dns.rrset
answer_ip, silent_ips = sys.argv[1], sys.argv[2:]
socks = []
for ip in silent_ips:  # bound, never answering
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((ip, 53)); socks.append(s)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((answer_ip, 53))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(4096)
    q = dns.message.from_wire(data)
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.53"))
    s.sendto(r.to_wire(), peer)
"""


def start_upstream(host: Host, answer_ip: str, *silent: str) -> subprocess.Popen[Any]:
    proc = host.popen([sys.executable, "-c", UPSTREAM, answer_ip, *silent],
                      stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.kill()
    proc.wait(timeout=10)


GARBAGE = """
import os, random, socket, sys
rng = random.Random(int(sys.argv[3]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
dst = (sys.argv[1], 53)
rcodes = {}
def drain():
    while True:
        try:
            data = s.recv(65535)
        except BlockingIOError:
            return
        code = data[3] & 0x0F if len(data) >= 4 else -1
        rcodes[code] = rcodes.get(code, 0) + 1
for i in range(int(sys.argv[2])):
    s.sendto(rng.randbytes(rng.randint(0, 600)), dst)
    if i % 50 == 0:
        drain()
import time; time.sleep(0.5); drain()
print(" ".join(f"{k}={v}" for k, v in sorted(rcodes.items())))
"""


def send_garbage(c: Container, server: str, count: int, seed: int) -> dict[int, int]:
    out = c.run([sys.executable, "-c", GARBAGE, server, str(count), str(seed)], timeout=300)
    return {int(k): int(v) for k, v in (p.split("=") for p in out.stdout.split())}
