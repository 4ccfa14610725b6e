"""The asyncio shell of the userspace datapath: the sleeve UDP socket and the TAP port.

One UDP socket on the mesh port carries both paths: DF sends switch the socket to
``IP_PMTUDISC_DO`` for the call, non-DF sends use ``IP_PMTUDISC_DONT`` (the kernel then
fragments). An EMSGSIZE on a DF send reports the route's path MTU to the forwarder, which
starts its MTU search. Frames are read from and written to a TAP port on the bridge.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable

from weavenet.core.mesh.router import Router
from weavenet.core.overlay.datapath import Datapath, UdpSend
from weavenet.core.overlay.vnet import ZERO_VNET

log = logging.getLogger("weavenet.sleeve")

IP_MTU_DISCOVER, IP_PMTUDISC_DONT, IP_PMTUDISC_DO, IP_MTU = 10, 0, 2, 14
READ_BATCH = 64  # reads per wake-up before yielding to the loop
SOCKET_BUFFER = 4 << 20
MAC_EXPIRY_SWEEP = 60.0  # weave sweeps its MAC cache once a minute


def path_mtu(addr: tuple[str, int]) -> int:
    """The kernel's current path MTU towards ``addr``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(addr)
        return int(probe.getsockopt(socket.IPPROTO_IP, IP_MTU))


class SleeveShell:
    def __init__(
        self,
        router: Router,
        datapath: Datapath,
        host: str,
        port: int,
        tap_fd: int,
        activity: Callable[[set[int]], None],
        vnet: bool = False,
    ) -> None:
        """``vnet``: the TAP has vnet headers (the fast sleeve reads it; we only inject)."""
        import asyncio

        self.router = router
        self.datapath = datapath
        self.tap_fd = tap_fd
        # forwarders that moved: the mesh shell tells the router and sends what they want
        self.activity = activity
        # Run at the end of every flush, i.e. after every batch of frames in or out (ours
        # and the fast sleeve's): fastdp looks there for MACs it should pin at once.
        self.after_frames: list[Callable[[], None]] = []
        self.loop = asyncio.get_running_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            self.sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        self.sock.bind((host or "0.0.0.0", port))
        self.sock.setblocking(False)
        self._df = False
        self.sent_bytes = 0
        self._set_df(False)
        os.set_blocking(tap_fd, False)
        self.loop.add_reader(self.sock.fileno(), self._on_udp)
        self.vnet = vnet
        if not vnet:
            self.loop.add_reader(tap_fd, self._on_tap)
        router.on_peer_gone(lambda name, _now: datapath.forget_peer(name))
        self._expiry = self.loop.call_later(MAC_EXPIRY_SWEEP, self._expire_macs)

    def _expire_macs(self) -> None:
        self.datapath.expire_macs(self.loop.time())
        self._expiry = self.loop.call_later(MAC_EXPIRY_SWEEP, self._expire_macs)

    def close(self) -> None:
        self._expiry.cancel()
        self.loop.remove_reader(self.sock.fileno())
        if not self.vnet:
            self.loop.remove_reader(self.tap_fd)
        self.sock.close()
        os.close(self.tap_fd)

    # ---- input -------------------------------------------------------------------------
    def _on_udp(self) -> None:
        now = self.loop.time()
        routes = self.router.routes(now)
        for _ in range(READ_BATCH):
            try:
                packet, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                log.debug("sleeve: receive error %s", exc)
                continue
            self.datapath.udp_received(packet, addr, routes, now)
        self.flush()

    def _on_tap(self) -> None:
        now = self.loop.time()
        routes = self.router.routes(now)
        for _ in range(READ_BATCH):
            try:
                frame = os.read(self.tap_fd, 65535)
            except (BlockingIOError, InterruptedError):
                break
            self.datapath.frame_captured(frame, routes, now)
        self.flush()

    # ---- output ------------------------------------------------------------------------
    def flush(self) -> None:
        """Send what the datapath produced, inject frames, and tell the mesh about
        forwarders whose state moved (established, MTU found, control messages)."""
        for _ in range(4):  # an EMSGSIZE makes the forwarder send MTU tests at once
            sends = self.datapath.take_udp()
            if not sends:
                break
            for send in sends:
                self._send(send)
        for frame in self.datapath.take_inject():
            try:
                if self.vnet:
                    os.writev(self.tap_fd, (ZERO_VNET, frame))
                else:
                    os.write(self.tap_fd, frame)
            except OSError as exc:
                log.debug("sleeve: inject failed: %s", exc)
        if self.datapath.changed:
            changed, self.datapath.changed = self.datapath.changed, set()
            self.activity(changed)
        for hook in self.after_frames:
            hook()

    def _send(self, send: UdpSend) -> None:
        if send.df != self._df:
            self._set_df(send.df)
        try:
            self.sent_bytes += self.sock.sendto(send.payload, send.addr)
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE and send.df:
                self.datapath.send_failed(send.peer, path_mtu(send.addr), self.loop.time())
            elif exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                log.debug("sleeve: send to %s failed: %s", send.addr, exc)

    def _set_df(self, df: bool) -> None:
        mode = IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT
        self.sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, mode)
        self._df = df
