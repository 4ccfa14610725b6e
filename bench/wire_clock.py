"""Latency as the wire sees it: kernel timestamps on the probe's own socket.

bench/scale.py probes up to 100 routers from one Python process: a thread per router,
all sharing one interpreter lock and, the bench being one process, one scheduling group
on a machine whose cores the routers keep busy. Timed with the thread's clock, a reply
includes however long that thread waited to run again after the reply had arrived: in
the eleventh pass's runs a router had its response sent and acknowledged by the probe's
kernel (the socket's unacknowledged and unsent queues empty) 100-400 ms before the probe
thread got round to reading it.

So the kernel times both ends (SO_TIMESTAMPING, software stamps): the moment the last
byte of the request leaves the probe's socket (the TX stamp, read back from the socket's
error queue) and the moment the last byte of the reply arrives at it (the RX stamp of
the last segment read). Their difference is the router's latency as any client on the
network would see it, and the probe thread's own waits are not in it. The request keeps
the connection alive (no ``Connection: close``): a FIN arriving after the reply would be
merged into the reply's segment and lend it its later stamp.

Where the kernel gives no stamp (an old kernel, another OS) the thread's clock is used.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)  # linux/asm-generic/socket.h
TX_SOFTWARE, RX_SOFTWARE, SOFTWARE = 1 << 1, 1 << 3, 1 << 4  # linux/net_tstamp.h
OPT_ID, OPT_TSONLY = 1 << 7, 1 << 11
STAMP_FLAGS = TX_SOFTWARE | RX_SOFTWARE | SOFTWARE | OPT_ID | OPT_TSONLY
ANCILLARY = 512


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    seconds: float  # request out -> reply in, by the kernel's stamps where it gave them
    stamped: bool  # False: `seconds` is the calling thread's clock
    thread_seconds: float  # connect -> whole reply read, by the calling thread's clock


def keep_stamping() -> socket.socket:
    """A socket that asks for RX stamps and stays open: the kernel stamps arriving packets
    only while some socket wants it (the netstamp static key), and turning that on takes
    effect late, so probe sockets that come and go would find some replies unstamped.
    Keep it for as long as probes run."""
    keeper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    keeper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, STAMP_FLAGS)
    return keeper


def _ask_for_stamps(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # no stamps: the thread's clock is used
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, STAMP_FLAGS)


def stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The software stamp in a recvmsg's ancillary data (CLOCK_REALTIME), if any."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING and len(data) >= 16:
            sec, nsec = struct.unpack_from("qq", data)
            if sec or nsec:
                return sec + nsec * 1e-9
    return None


class _StampedSocket:
    """Receives on ``sock`` until a deadline, collecting its TX stamps on the way.

    A stamp waiting on the error queue makes poll() report POLLERR, so a socket with a
    timeout (which polls, finds no data, polls again) would spin until the reply came;
    here every wake-up drains the error queue first."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.deadline = time.monotonic() + timeout
        self.sent: float | None = None  # the earliest TX stamp: a retransmission's is later
        sock.setblocking(False)
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def recv(self, size: int) -> tuple[bytes, float | None]:
        """(data, its RX stamp); b"" at the end of a connection; TimeoutError at the
        deadline."""
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(size, ANCILLARY)
                return data, stamp(ancillary)
            except (BlockingIOError, InterruptedError):
                pass
            self.drain_errors()
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply")
            self._poll.poll(1e3 * left)

    def drain_errors(self) -> None:
        while True:
            try:
                _, ancillary, _, _ = self.sock.recvmsg(64, ANCILLARY, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            sent = stamp(ancillary)
            if sent is not None and (self.sent is None or sent < self.sent):
                self.sent = sent


def _complete(data: bytes, eof: bool) -> tuple[int, bytes] | None:
    """(status, body) once ``data`` holds a whole HTTP/1.1 response (``eof``: the peer
    closed the connection after it), else None."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    if "content-length" in fields:
        length = int(fields["content-length"])
        return (status, body[:length]) if len(body) >= length else None
    if fields.get("transfer-encoding", "").lower() == "chunked":
        return (status, _dechunk(body)) if body.endswith(b"0\r\n\r\n") else None
    return (status, body) if eof else None  # a body that ends with the connection


def _dechunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


def http_get(host: str, port: int, path: str, timeout: float = 10.0) -> Reply:
    """GET ``path``; raises OSError (or ValueError for a garbled reply) on failure."""
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        _ask_for_stamps(sock)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        stamped = _StampedSocket(sock, timeout)
        data, arrived = b"", None
        while True:
            chunk, rx = stamped.recv(1 << 16)
            arrived = rx or arrived
            data += chunk
            reply = _complete(data, eof=not chunk)
            if reply is not None:
                break
            if not chunk:
                raise ValueError("the connection closed before a whole reply")
        wall = time.monotonic() - started
        stamped.drain_errors()
    return Reply(*reply, *_latency(stamped.sent, arrived, wall), wall)


def _latency(sent: float | None, arrived: float | None, wall: float) -> tuple[float, bool]:
    """(seconds, stamped): by the stamps when there are both, else the thread's clock."""
    if sent is not None and arrived is not None and arrived >= sent:
        return arrived - sent, True
    return wall, False


def dns_exchange(
    query: bytes, addr: tuple[str, int], timeout: float, matches: Callable[[bytes], bool]
) -> tuple[bytes, float]:
    """Send one datagram and wait for the reply that ``matches``: (reply, seconds), stamped
    like http_get. Raises OSError (TimeoutError) when none comes within ``timeout``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        _ask_for_stamps(sock)
        started = time.monotonic()
        sock.sendto(query, addr)
        stamped = _StampedSocket(sock, timeout)
        while True:
            reply, arrived = stamped.recv(4096)
            if matches(reply):
                break
        wall = time.monotonic() - started
        stamped.drain_errors()
    return reply, _latency(stamped.sent, arrived, wall)[0]
