"""The fast sleeve's packet path, sans-IO: superframes to datagram sends, datagrams to
superframes, per peer (see :mod:`.fast_sleeve` for the overlay, :mod:`.fast_sleeve_codec`
for the format).

On receipt, every datagram is checked against the sender's replay window *before* it is
reassembled (a replayed datagram is dropped and counted at once), and the window moves
only once the whole superframe has authenticated, so forged datagrams never move it.
Plain connections keep the window too: it drops duplicated superframes.
The hot path keeps to one object per datagram at most: sends are scatter lists over the
caller's buffer (``sendmsg`` gathers them, no copy), receipts are views of the shell's
receive buffer copied once, into their place in the superframe.
"""

from __future__ import annotations

import logging

import msgspec

from weavenet.core.overlay.fast_sleeve import FastSleeveForwarder, FastSleeveOverlay
from weavenet.core.overlay.fast_sleeve_codec import (
    AAD_SIZE,
    HEADER,
    PEERS,
    Buffer,
    FastSleeveError,
    Kind,
    Reassembler,
    contiguous_run,
    pack_prefix,
    parse_header,
    split,
)
from weavenet.core.overlay.fast_sleeve_crypto import Opener, Sealer, direction_keys
from weavenet.core.overlay.replay import ReplayWindow
from weavenet.core.peername import format_peer_name

log = logging.getLogger("weavenet.fastsleeve")

MAX_UDP_SEND = 65507  # one sendmsg: 65535 - IPv4 20 - UDP 8
MAX_SEGMENTS = 64  # the kernel's UDP_MAX_SEGMENTS (128 on newer kernels)
MIN_DATA = PEERS + 10 + 14  # peers, vnet header, Ethernet header
WARN_INTERVAL = 10.0


class Outgoing(msgspec.Struct, frozen=True):
    """One ``sendmsg``: ``iov`` gathered, cut into datagrams of ``segment`` bytes."""

    addr: tuple[str, int]
    iov: list[Buffer]
    segment: int
    peer: int


class Delivered(msgspec.Struct, frozen=True):
    """A data superframe from neighbour ``sender``; ``packet[PEERS:]`` is vnet + frame."""

    sender: int
    src: int
    dst: int
    packet: Buffer


class _Peer:
    __slots__ = ("fwd", "next_id", "opener", "reassembly", "sealer", "window")

    def __init__(self, fwd: FastSleeveForwarder) -> None:
        send_key = recv_key = None
        if fwd.session_key is not None:
            send_key, recv_key = direction_keys(fwd.session_key, fwd.outbound)
        self.fwd = fwd
        self.sealer, self.opener = Sealer(send_key), Opener(recv_key)
        self.window = ReplayWindow()
        self.reassembly = Reassembler()
        self.next_id = 1


class FastSleevePath(msgspec.Struct):
    ourself: int
    overlay: FastSleeveOverlay
    max_segments: int = MAX_SEGMENTS
    changed: set[int] = msgspec.field(default_factory=set)  # peers whose heartbeat we must ack
    _peers: dict[int, _Peer] = msgspec.field(default_factory=dict)
    _out: list[Outgoing] = msgspec.field(default_factory=list)
    _quiet_until: float = float("-inf")

    def _peer(self, name: int) -> _Peer | None:
        fwd = self.overlay.connections.get(name)
        peer = self._peers.get(name)
        if fwd is None:
            return None
        if peer is None or peer.fwd is not fwd:
            peer = self._peers[name] = _Peer(fwd)
        return peer

    def _rejected(self, what: str, sender: int, now: float) -> None:
        """One log line per :data:`WARN_INTERVAL` for attacks (the counters say how many)."""
        if now >= self._quiet_until:
            self._quiet_until = now + WARN_INTERVAL
            c = self.overlay.counters
            log.warning(
                "fast sleeve: dropped a %s datagram from %s (so far: %d replayed, %d forged)",
                what, format_peer_name(sender), c.replayed, c.forged,
            )  # fmt: skip

    def forget_peer(self, name: int) -> None:
        self._peers.pop(name, None)

    # ---- sending -------------------------------------------------------------------------
    def send(self, fwd: FastSleeveForwarder, body: Buffer, kind: Kind = Kind.DATA) -> None:
        """Queue ``body`` (for data: origin, destination, vnet header, frame) to the peer.
        The sends refer to ``body``: take and send them before reusing its buffer."""
        peer = self._peer(fwd.remote)
        if peer is None:
            return
        sfid, peer.next_id = peer.next_id, peer.next_id + 1
        prefix = pack_prefix(kind, self.ourself, sfid)
        sealed = peer.sealer.seal(sfid, prefix, body)
        size = fwd.datagram_size
        per_send = max(1, min(self.max_segments, MAX_UDP_SEND // size))
        addr = (fwd.remote_ip, fwd.port)
        for iov in split(prefix, sealed, size, per_send):
            self._out.append(Outgoing(addr, iov, size, fwd.remote))
            self.overlay.counters.datagrams_out += len(iov) // 2
        self.overlay.counters.superframes_out += 1

    def send_heartbeats(self) -> None:
        for beat in self.overlay.take_heartbeats():
            fwd = self.overlay.connections.get(beat.peer)
            if fwd is not None:
                self.send(fwd, beat.payload, Kind.HEARTBEAT)

    def take_sends(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    # ---- receiving -----------------------------------------------------------------------
    def received(self, buf: Buffer, length: int, segment: int, now: float) -> list[Delivered]:
        """``length`` bytes of datagrams, each ``segment`` bytes but the last (UDP GRO;
        0: one datagram), from the fast sleeve socket."""
        self.overlay.counters.receives += 1
        view = memoryview(buf)[:length]
        step = segment or length
        if step < length:
            run = contiguous_run(view, length, step)
            if run is not None:
                got = self._run(view, run, -(-length // step), step - HEADER, now)
                return [got] if got is not None else []
        out: list[Delivered] = []
        for start in range(0, length, step):
            got = self._datagram(view[start : min(start + step, length)], now)
            if got is not None:
                out.append(got)
        return out

    def _run(
        self, view: memoryview, run: tuple[int, int, bytes], datagrams: int, stride: int, now: float
    ) -> Delivered | None:
        """A GRO run of consecutive datagrams of one superframe (:func:`contiguous_run`)."""
        counters = self.overlay.counters
        counters.datagrams_in += datagrams
        try:
            head = parse_header(view)
        except FastSleeveError:
            counters.malformed += datagrams
            return None
        peer = self._peer(head.sender)
        if peer is None:
            counters.malformed += datagrams
            return None
        if not peer.window.fresh(head.sfid):
            counters.replayed += datagrams
            self._rejected("replayed", head.sender, now)
            return None
        first, count, data = run
        try:
            whole = peer.reassembly.add_block(head.sfid, first, count, data, stride)
        except FastSleeveError:
            whole = None
            counters.malformed += 1
        counters.lost += peer.reassembly.take_lost()
        if whole is None:
            return None
        return self._superframe(peer, head.kind, head.sfid, bytes(view[:AAD_SIZE]), whole, now)

    def _datagram(self, datagram: memoryview, now: float) -> Delivered | None:
        counters = self.overlay.counters
        counters.datagrams_in += 1
        try:
            head = parse_header(datagram)
        except FastSleeveError:
            counters.malformed += 1
            return None
        peer = self._peer(head.sender)
        if peer is None:
            counters.malformed += 1
            return None
        if not peer.window.fresh(head.sfid):
            counters.replayed += 1
            self._rejected("replayed", head.sender, now)
            return None
        try:
            whole = peer.reassembly.add(head.sfid, head.index, head.count, datagram[HEADER:])
        except FastSleeveError:
            whole = None
            counters.malformed += 1
        counters.lost += peer.reassembly.take_lost()
        if whole is None:
            return None
        return self._superframe(peer, head.kind, head.sfid, bytes(datagram[:AAD_SIZE]), whole, now)

    def _superframe(
        self, peer: _Peer, kind: Kind, sfid: int, aad: bytes, whole: Buffer, now: float
    ) -> Delivered | None:
        counters = self.overlay.counters
        try:
            body = peer.opener.open(sfid, aad, whole)
        except FastSleeveError:
            counters.forged += 1
            self._rejected("forged or corrupted", peer.fwd.remote, now)
            return None
        if not peer.window.accept(sfid):
            counters.replayed += 1
            return None
        counters.superframes_in += 1
        sender = peer.fwd.remote
        if kind is Kind.HEARTBEAT:
            uid = int.from_bytes(body[:8], "big")
            if len(body) >= 8 and self.overlay.heartbeat_received(sender, uid, now):
                self.changed.add(sender)
            return None
        if len(body) < MIN_DATA:
            counters.malformed += 1
            return None
        src, dst = int.from_bytes(body[:6], "big"), int.from_bytes(body[6:PEERS], "big")
        return Delivered(sender, src, dst, body)
