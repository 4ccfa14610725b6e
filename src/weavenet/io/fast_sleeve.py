"""The asyncio shell of the fast sleeve: the vnet TAP and a UDP socket with GSO and GRO.

The TAP (``IFF_VNET_HDR``, TSO on) is read into one reused buffer, at an offset that
leaves room for the peers' names, so a superframe goes out without a copy: the core's
sends are scatter lists over that buffer, and one ``sendmsg`` with ``UDP_SEGMENT`` hands
the kernel the whole superframe, which it cuts into datagrams. They are sent before the
next read reuses the buffer. The socket (mesh port + 2) has ``UDP_GRO`` on: one
``recvmsg_into`` returns a run of datagrams coalesced by the kernel, the segment size in
a control message. Datagram size: the route's MTU to the peer less 28, asked when a
forwarder is first seen and again after an EMSGSIZE.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
from collections.abc import Callable

from weavenet.core.mesh.router import Router
from weavenet.core.overlay.datapath import Datapath
from weavenet.core.overlay.fast_sleeve import FastSleeveForwarder, FastSleeveOverlay
from weavenet.core.overlay.fast_sleeve_path import FastSleevePath, Outgoing
from weavenet.core.overlay.vnet_datapath import HEADROOM, VnetDatapath
from weavenet.io.mesh_tcp import MeshShell
from weavenet.io.sleeve_udp import SleeveShell, path_mtu

log = logging.getLogger("weavenet.fastsleeve")

SOL_UDP, UDP_SEGMENT, UDP_GRO = 17, 103, 104
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2
UDP_IP_OVERHEAD = 28
READ_BATCH = 32
SOCKET_BUFFER = 16 << 20
TAP_BUFFER = 65536 + 1024  # a GSO superframe (<= 64 KB) and its vnet header
RECV_BUFFER = 65536 + 1024
_CMSG = socket.CMSG_SPACE(4)
_INT = struct.Struct("=i")
_SEG = struct.Struct("=H")


class FastSleeveShell:
    def __init__(
        self,
        router: Router,
        vnet: VnetDatapath,
        sleeve: SleeveShell,
        tap_fd: int,
        addr: tuple[str, int],
        activity: Callable[[set[int]], None],
    ) -> None:
        self.router, self.vnet, self.path = router, vnet, vnet.fast
        self.sleeve, self.tap_fd, self.activity = sleeve, tap_fd, activity
        self.loop = asyncio.get_running_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            self.sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        self.sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        self.sock.setsockopt(SOL_UDP, UDP_GRO, 1)
        self.sock.bind(addr)
        self.sock.setblocking(False)
        self.tap_buf = bytearray(HEADROOM + TAP_BUFFER)
        self._tap_view = [memoryview(self.tap_buf)[HEADROOM:]]
        self.sent_bytes = 0
        self.recv_buf = bytearray(RECV_BUFFER)
        self._recv_view = [memoryview(self.recv_buf)]
        self.loop.add_reader(self.sock.fileno(), self._on_udp)
        self.loop.add_reader(tap_fd, self._on_tap)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.loop.remove_reader(self.tap_fd)
        self.sock.close()

    # ---- input ----------------------------------------------------------------------------
    def _on_tap(self) -> None:
        now = self.loop.time()
        routes = self.router.routes(now)
        for _ in range(READ_BATCH):
            try:
                length = os.readv(self.tap_fd, self._tap_view)
            except (BlockingIOError, InterruptedError):
                break
            self.vnet.captured(self.tap_buf, length, routes, now)
            self._send()  # before the next read reuses the buffer
        self._after_batch(now)

    def _on_udp(self) -> None:
        now = self.loop.time()
        routes = self.router.routes(now)
        for _ in range(READ_BATCH):
            try:
                length, ancillary, _flags, _addr = self.sock.recvmsg_into(self._recv_view, _CMSG)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                log.debug("fast sleeve: receive error %s", exc)
                continue
            segment = 0
            for level, kind, data in ancillary:
                if level == SOL_UDP and kind == UDP_GRO and len(data) >= 4:
                    segment = _INT.unpack_from(data)[0]
            for got in self.path.received(self.recv_buf, length, segment, now):
                self.vnet.delivered(got, routes, now)
            self._send()
        self._after_batch(now)

    def _after_batch(self, now: float) -> None:
        for packet in self.vnet.take_inject():
            try:
                os.write(self.tap_fd, packet)
            except OSError as exc:
                log.debug("fast sleeve: inject failed: %s", exc)
        self.sleeve.flush()  # what went to the Weave-compatible sleeve, and its injects
        if self.path.changed:
            changed, self.path.changed = self.path.changed, set()
            self.activity(changed)
            self.flush()

    # ---- output ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Heartbeats the forwarders want sent (called after every mesh round)."""
        for fwd in self.path.overlay.take_unsized():
            self._size(fwd)
        self.path.send_heartbeats()
        self._send()

    def _size(self, fwd: FastSleeveForwarder) -> None:
        try:
            fwd.set_datagram_size(path_mtu((fwd.remote_ip, fwd.port)) - UDP_IP_OVERHEAD)
        except OSError as exc:
            log.debug("fast sleeve: no route MTU to %s: %s", fwd.remote_ip, exc)

    def _send(self) -> None:
        for out in self.path.take_sends():
            self._send_one(out)

    def _send_one(self, out: Outgoing) -> None:
        cmsg = [(SOL_UDP, UDP_SEGMENT, _SEG.pack(out.segment))]
        try:
            self.sent_bytes += self.sock.sendmsg(out.iov, cmsg, 0, out.addr)
        except OSError as exc:
            self.path.overlay.counters.send_errors += 1
            if exc.errno in (errno.EMSGSIZE, errno.EINVAL):
                fwd = self.path.overlay.connections.get(out.peer)
                if fwd is not None:
                    self._size(fwd)
                log.debug("fast sleeve: send to %s: %s (resized)", out.addr, exc)
            elif exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                log.debug("fast sleeve: send to %s failed: %s", out.addr, exc)


def start_fast_sleeve(
    router: Router,
    overlay: FastSleeveOverlay,
    datapath: Datapath,
    sleeve: SleeveShell,
    tap_fd: int,
    host: str,
    mesh: MeshShell,
) -> FastSleeveShell:
    """Wire the fast sleeve into the daemon: it reads the (vnet) TAP instead of the
    sleeve, and its heartbeats go out after every mesh round."""
    vnet = VnetDatapath(datapath, FastSleevePath(router.name, overlay))
    addr = (host or "0.0.0.0", overlay.port)
    shell = FastSleeveShell(router, vnet, sleeve, tap_fd, addr, mesh.overlay_activity)
    mesh.post_effects.append(shell.flush)
    mesh.sent_counters["fast sleeve"] = lambda: shell.sent_bytes
    router.on_peer_gone(lambda name, _now: vnet.fast.forget_peer(name))
    log.info("fast sleeve: TSO superframes on UDP %d", overlay.port)
    return shell
