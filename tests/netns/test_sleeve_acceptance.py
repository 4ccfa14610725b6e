"""Acceptance tests for the sleeve data plane (issue "Data plane", items 3 and 4).

Item 3, encryption: with ``--password`` nothing a container sends is visible on the
underlay, the connection reports itself encrypted, a replayed sleeve datagram is rejected
and counted, and peers with different passwords never carry traffic. Item 4, MTU: with an
underlay that silently drops UDP datagrams over 700 bytes the sleeve discovers a path MTU
that fits, and big pings and TCP transfers still get through intact.

The underlay capture is a raw AF_PACKET socket opened in the LAN namespace (the bridge
between the hosts), so it sees exactly what crosses the emulated wire.
"""

from __future__ import annotations

import functools
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from weavenet.harness import Cluster, Container, Host, wait_until
from weavenet.harness.containers import attached_container, wait_reaches
from weavenet.harness.mesh import wait_for_mesh
from weavenet.harness.transfer import tcp_transfer

MARKER = b"MARKER-7f3a"
SLEEVE_PORT = 6783
ETH_P_ALL = 3
PACKET_OUTGOING = 4  # socket.PACKET_OUTGOING; the ingress copy of each frame is enough
SOL_PACKET = 263  # socket.SOL_PACKET is missing from this CPython build

# Runs in the LAN netns: every frame entering the bridge from a host's port, written to a
# file as (length, frame) records until SIGTERM.
_CAPTURE = f"""
import signal, socket, struct, sys
out = open(sys.argv[1], "wb")
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons({ETH_P_ALL}))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
s.settimeout(0.1)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("capturing", flush=True)
while not stop:
    try:
        frame, addr = s.recvfrom(1 << 16)
    except (TimeoutError, InterruptedError):
        continue
    if addr[2] != {PACKET_OUTGOING}:
        out.write(struct.pack("!I", len(frame)) + frame)
out.close()
"""


def _container(host: Host, name: str, cidr: str) -> Container:
    return attached_container(host, name, cidr)


_reaches = wait_reaches


@dataclass(frozen=True)
class Udp:
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes


class Capture:
    """Frames seen on the emulated LAN while the `capture` context was open."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames

    def udp(self) -> list[Udp]:
        """UDP datagrams (unfragmented IPv4 only) among the captured frames."""
        out = []
        for frame in self.frames:
            if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack("!H", ip[2:4])[0]
            more_frags_or_offset = struct.unpack("!H", ip[6:8])[0] & 0x3FFF
            if ip[9] != socket.IPPROTO_UDP or more_frags_or_offset:
                continue
            sport, dport, length = struct.unpack("!HHH", ip[ihl : ihl + 6])
            payload = ip[ihl + 8 : min(total, ihl + length)]
            out.append(Udp(socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]),
                           sport, dport, payload))  # fmt: skip
        return out

    def sleeve(self, src: Host, dst: Host) -> list[Udp]:
        """Sleeve datagrams from `src`'s router to `dst`'s router."""
        return [
            u
            for u in self.udp()
            if (u.src, u.dst, u.sport, u.dport) == (src.ip, dst.ip, SLEEVE_PORT, SLEEVE_PORT)
        ]

    def frames_with(self, needle: bytes) -> int:
        return sum(1 for f in self.frames if needle in f)


@contextmanager
def capture(cluster: Cluster) -> Iterator[list[Capture]]:
    """Capture the LAN while the block runs; the yielded list then holds the Capture."""
    path = cluster.tmpdir / "lan.capture"
    argv = cluster.lan.exec_argv([sys.executable, "-c", _CAPTURE, str(path)])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    cluster.procs.append(proc)  # killed at teardown if anything below goes wrong
    result: list[Capture] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "capturing", "capture did not start"
        yield result
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    result.append(Capture(_read_frames(path)))


def _read_frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    frames, pos = [], 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack("!I", data[pos : pos + 4])
        frames.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return frames


def _send_udp_markers(src: Container, dst_ip: str, count: int = 50) -> None:
    send = (
        "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"for i in range({count}):\n"
        " s.sendto(bytes.fromhex(sys.argv[2])*40+str(i).encode(),(sys.argv[1],5300))"
    )
    src.run([sys.executable, "-c", send, dst_ip, MARKER.hex()])


def _connections(host: Host) -> str:
    return host.weave("status", "connections").stdout


def _stats(host: Host) -> dict[str, int]:
    stats: dict[str, int] = host.report()["Router"]["DatapathStats"]
    return stats


def _two_hosts(c: Cluster, *args: str) -> tuple[Host, Host]:
    h1, h2 = c.hosts
    h1.launch("--no-fastdp", "--no-fast-sleeve", *args)
    h2.launch("--no-fastdp", "--no-fast-sleeve", *args, h1.ip)
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=20)
    return h1, h2


def _carry_markers(c: Cluster, password: str | None) -> tuple[Host, Host, Capture]:
    """Two hosts (encrypted with `password` if given) whose containers exchange the
    marker over TCP and UDP while the LAN is captured."""
    h1, h2 = _two_hosts(c, *(["--password", password] if password else []))
    a = _container(h1, "a", "10.2.1.1/24")
    b = _container(h2, "b", "10.2.1.2/24")
    _reaches(a, "10.2.1.2")
    with capture(c) as captured:
        tcp_transfer(a, b, "10.2.1.2", 256 * 1024, fill=MARKER)
        _send_udp_markers(a, "10.2.1.2")
    return h1, h2, captured[0]


def test_encrypted_sleeve_hides_payload_and_rejects_replays(
    cluster: Callable[..., Cluster],
) -> None:
    c = cluster(2)
    h1, h2, cap = _carry_markers(c, password="s3cret")

    # (a) the capture worked: the transfer crossed the LAN as sleeve datagrams h1 -> h2 ...
    sleeve = cap.sleeve(h1, h2)
    carried = sum(len(u.payload) for u in sleeve)
    assert carried >= 256 * 1024, f"only {len(sleeve)} sleeve datagrams, {carried} bytes seen"
    # ... and the marker crossed it nowhere, in no frame at all.
    assert cap.frames_with(MARKER) == 0, "plaintext marker seen on the underlay"

    # (b) the connection says it is encrypted and uses the sleeve.
    for host in (h1, h2):
        assert re.search(r"established encrypted\s+sleeve", _connections(host)), host

    # (c) replaying captured h1 -> h2 datagrams (from h1's netns, to h2:6783) is rejected
    # and counted; traffic keeps flowing. Old ones (far behind the replay window) and the
    # most recent ones (inside it) alike.
    picks = sorted({0, len(sleeve) // 4, len(sleeve) // 2, len(sleeve) - 2, len(sleeve) - 1})
    replays = [sleeve[i].payload for i in picks]
    before = _stats(h2)
    resend = (
        "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "for p in sys.argv[2:]: s.sendto(bytes.fromhex(p),(sys.argv[1],6783))"
    )
    h1.run([sys.executable, "-c", resend, h2.ip, *(p.hex() for p in replays)])
    wait_until(
        lambda: _stats(h2)["replayed_packets"] >= before["replayed_packets"] + len(replays),
        timeout=10,
        message=f"h2 counts {len(replays)} replayed datagrams",
        describe=lambda: _stats(h2),
    )
    after = _stats(h2)
    assert after["replayed_packets"] == before["replayed_packets"] + len(replays), after
    assert after["dropped_packets"] == before["dropped_packets"], "replays counted as garbage"
    _reaches(h1.containers["a"], "10.2.1.2")


def test_unencrypted_sleeve_shows_payload_on_the_underlay(
    cluster: Callable[..., Cluster],
) -> None:
    """Control for the capture above: without a password the marker is on the wire."""
    c = cluster(2)
    h1, h2, cap = _carry_markers(c, password=None)
    assert cap.sleeve(h1, h2), "no sleeve datagrams captured"
    assert cap.frames_with(MARKER) > 0, "the capture cannot see the payload"
    assert any(MARKER in u.payload for u in cap.sleeve(h1, h2))


def test_different_passwords_never_carry_traffic(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, h2 = c.hosts
    h1.launch("--no-fastdp", "--no-fast-sleeve", "--password", "first-secret")
    h2.launch("--no-fastdp", "--no-fast-sleeve", "--password", "other-secret", h1.ip)
    a = _container(h1, "a", "10.2.1.1/24")
    _container(h2, "b", "10.2.1.2/24")
    wait_until(
        lambda: "Unable to decrypt" in _connections(h2),
        timeout=15,
        message="h2 tried h1 and failed the handshake",
        describe=lambda: _connections(h2),
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert not a.ping("10.2.1.2", timeout=0.5), "traffic crossed a password mismatch"
        for host in (h1, h2):
            assert "established" not in _connections(host), _connections(host)
    for host in (h1, h2):
        assert len(host.report()["Router"]["Peers"]) == 1, "the peers learnt of each other"


def _mtu(host: Host) -> int | None:
    m = re.search(r"mtu=(\d+)", _connections(host))
    return int(m.group(1)) if m else None


def test_path_mtu_under_a_700_byte_underlay(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    c.iptables("-A", "FORWARD", "-p", "udp", "-m", "length", "--length", "701:65535",
               "-j", "DROP")  # fmt: skip
    h1, h2 = _two_hosts(c)
    mtus = {
        host.name: wait_until(
            functools.partial(_mtu, host),
            timeout=40,
            message=f"{host.name} discovers the sleeve MTU",
            describe=functools.partial(_connections, host),
        )
        for host in (h1, h2)
    }
    assert all(m is not None and m <= 700 - 62 for m in mtus.values()), mtus
    a = _container(h1, "a", "10.2.1.1/24")
    b = _container(h2, "b", "10.2.1.2/24")
    _reaches(a, "10.2.1.2")
    # the first big ping may only teach the sender the path MTU (ICMP frag-needed)
    wait_until(
        lambda: a.ping("10.2.1.2", timeout=2.0, size=10000),
        timeout=20,
        message="ping -s 10000 across the 700-byte underlay",
    )
    tcp_transfer(a, b, "10.2.1.2", 10 * 1024)
    tcp_transfer(a, b, "10.2.1.2", 10 * 1024 * 1024)
    rules = c.iptables("-L", "FORWARD", "-v", "-n", "-x").stdout
    drops = re.search(r"^\s*(\d+)\s+\d+\s+DROP", rules, re.M)
    assert drops and int(drops.group(1)) > 0, f"the underlay limit never bit:\n{rules}"
