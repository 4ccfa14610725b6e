"""The userspace datapath (the sleeve side of the overlay switch), sans-IO: frames from
the bridge and UDP packets from peers in; UDP packets to peers and frames for the bridge out.

Per entry point, records bound for one neighbour are batched into as few UDP packets as
fit (weave's ``aggregateAndSend``), sealed with that connection's NaCl session when the
mesh is encrypted, and handed to the shell by :meth:`take_udp`. DF handling follows
weave-wire §7.6: a DF frame too big for the path gets an ICMP "fragmentation needed" back
into our bridge; other IPv4 frames are fragmented by us unless the peer showed that IP
fragments reach it.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from weavenet.core.mesh.routes import Routes
from weavenet.core.overlay.forwarding import Forwarder, Send
from weavenet.core.overlay.ipv4 import fragment_ipv4, icmp_frag_needed, ipv4_df, is_ipv4
from weavenet.core.overlay.sleeve import MIN_MTU, Datagram, SleeveConnection
from weavenet.core.overlay.sleeve_codec import (
    MAX_UDP_PAYLOAD,
    Batcher,
    FrameRecord,
    PlainSealer,
    SleeveError,
    classify_special,
    decode_records,
)
from weavenet.core.overlay.sleeve_crypto import Replayed, SleeveDecryptor, SleeveEncryptor


class UserspacePaths(Protocol):
    """What the datapath needs from the overlay seam: the sleeve forwarder of each
    connection, which carries every frame that reaches userspace. (The overlay switch
    decides which forwarder carries a peer's traffic; frames on fastdp never get here:
    the kernel bridge hands them to the VXLAN device, whose fdb the switch plans.)"""

    def sleeve_connection(self, peer: int) -> SleeveConnection | None: ...

    def sleeve_connections(self) -> list[SleeveConnection]: ...

    def take_ready(self) -> list[SleeveConnection]:
        """The sleeve connections that queued datagrams since the last call."""
        ...


class UdpSend(msgspec.Struct):  # not frozen: created per frame, and frozen init costs 3x
    addr: tuple[str, int]
    payload: bytes
    df: bool
    peer: int  # the neighbour, so an EMSGSIZE can be reported against its forwarder


class DatapathCounters(msgspec.Struct):
    packets_in: int = 0
    packets_out: int = 0
    dropped_packets: int = 0  # undecodable, unknown sender, failed decryption
    replayed_packets: int = 0
    frames_too_big: int = 0  # DF frames answered with ICMP frag-needed, or dropped
    # UDP payload bytes queued per control-frame kind (heartbeat, fragtest, pmtu probe,
    # mtutest): what the sleeve itself costs per peer; the PMTU probe fails locally
    special_bytes: dict[str, int] = msgspec.field(default_factory=dict)


class _Crypto(msgspec.Struct):
    """Per-connection sealing state, kept as long as the connection object lives."""

    conn: SleeveConnection
    sealer: SleeveEncryptor | PlainSealer
    opener: SleeveDecryptor | None


class Datapath(msgspec.Struct):
    """Build it with ``Datapath.create(ourself, overlay)``, which makes our forwarder."""

    ourself: int
    overlay: UserspacePaths
    forwarder: Forwarder
    counters: DatapathCounters = msgspec.field(default_factory=DatapathCounters)
    changed: set[int] = msgspec.field(default_factory=set)  # peers whose forwarder state moved
    _udp: list[UdpSend] = msgspec.field(default_factory=list)
    _inject: list[bytes] = msgspec.field(default_factory=list)
    _batches: dict[tuple[int, bool], Batcher] = msgspec.field(default_factory=dict)
    # the batches that hold records
    _unflushed: dict[tuple[int, bool], None] = msgspec.field(default_factory=dict)
    _crypto: dict[int, _Crypto] = msgspec.field(default_factory=dict)

    @classmethod
    def create(cls, ourself: int, overlay: UserspacePaths) -> Datapath:
        # a Struct has no init=False field: the forwarder, derived from ourself, is made here
        return cls(ourself, overlay, Forwarder(ourself))

    # ---- inputs ------------------------------------------------------------------------
    def frame_captured(self, frame: bytes, routes: Routes, now: float) -> None:
        for send in self.forwarder.captured(frame, routes, now):
            self.send_frame(send, frame, now, captured=True)

    def udp_received(
        self, packet: bytes, addr: tuple[str, int], routes: Routes, now: float
    ) -> None:
        self.counters.packets_in += 1
        if len(packet) < 6:
            self.counters.dropped_packets += 1
            return
        sender = int.from_bytes(packet[:6], "big")
        conn = self.overlay.sleeve_connection(sender)
        if conn is None or not conn.active:
            self.counters.dropped_packets += 1
            return
        body, start = self._open(conn, packet)
        if body is None:
            return
        records, _problem = decode_records(body, start)
        for record in records:
            self._record(conn, record, addr, routes, now)

    def _open(self, conn: SleeveConnection, packet: bytes) -> tuple[bytes | None, int]:
        """(records body, where the records start in it): no copy for plain packets."""
        crypto = self._crypto_for(conn)
        if crypto.opener is None:
            return packet, 6
        try:
            return crypto.opener.open(packet, 6), 0
        except Replayed:
            self.counters.replayed_packets += 1
        except SleeveError:
            self.counters.dropped_packets += 1
        return None, 0

    def _record(
        self,
        conn: SleeveConnection,
        record: FrameRecord,
        addr: tuple[str, int],
        routes: Routes,
        now: float,
    ) -> None:
        special = classify_special(record.frame)
        if special is not None:
            if record.src == conn.remote and record.dst == self.ourself:
                conn.special_frame(special, addr, now)
                self.changed.add(conn.remote)
            return
        inject, sends = self.forwarder.received(record.src, record.dst, record.frame, routes, now)
        if inject:
            self._inject.append(record.frame)
        for send in sends:
            self.send_frame(send, record.frame, now, captured=False)

    def send_failed(self, peer: int, kernel_pmtu: int, now: float) -> None:
        """A DF send to ``peer`` failed with EMSGSIZE (the PMTU probe, normally)."""
        conn = self.overlay.sleeve_connection(peer)
        if conn is not None:
            conn.send_failed(kernel_pmtu, now)
            self.changed.add(peer)

    # ---- outputs -----------------------------------------------------------------------
    def take_udp(self) -> list[UdpSend]:
        """Everything to send, batches closed: call once per burst of input, so that
        small frames (TCP ACKs, ARP) share datagrams."""
        self._flush()
        self._pump_specials()
        out, self._udp = self._udp, []
        self.counters.packets_out += len(out)
        return out

    def take_inject(self) -> list[bytes]:
        out, self._inject = self._inject, []
        return out

    def _pump_specials(self) -> None:
        """Heartbeats and tests the forwarders want sent, each in a packet of its own
        (only the forwarders that queued some are asked)."""
        for conn in self.overlay.take_ready():
            for dgram in conn.take_datagrams():
                self._emit(conn, dgram)

    def _emit(self, conn: SleeveConnection, dgram: Datagram) -> None:
        if conn.remote_addr is None:
            return
        crypto = self._crypto_for(conn)
        batch = Batcher(MAX_UDP_PAYLOAD, crypto.sealer.packet_overhead)
        for record in dgram.records:
            batch.add(record)
        body = batch.flush() or b""
        payload = crypto.sealer.seal(body, dgram.df)
        self._udp.append(UdpSend(conn.remote_addr, payload, dgram.df, conn.remote))
        specials = self.counters.special_bytes
        specials[dgram.kind] = specials.get(dgram.kind, 0) + len(payload)

    # ---- frames to neighbours --------------------------------------------------------------
    def send_frame(self, send: Send, frame: bytes, now: float, captured: bool) -> None:
        """Hand ``frame`` to the sleeve forwarder of ``send.next_hop`` (``captured``: it
        came from our bridge, so an ICMP "fragmentation needed" may go back into it)."""
        conn = self.overlay.sleeve_connection(send.next_hop)
        if conn is None or not conn.active or not conn.established or conn.remote_addr is None:
            self.forwarder.counters.dropped.add(len(frame))
            return
        if not conn.discovering and len(frame) > MIN_MTU:
            conn.need_path(now)  # the sleeve deferred its MTU search: it is needed now
            self.changed.add(conn.remote)
        record = FrameRecord(send.src, send.dst, frame)
        ipv4 = is_ipv4(frame)
        if ipv4 and ipv4_df(frame):
            if conn.frame_fits(frame):
                self._queue(conn, record, df=True)
            else:
                self._too_big(conn, frame, captured)
        elif conn.stack_frag or not ipv4:
            self._queue(conn, record, df=False)
        elif conn.frame_fits(frame):
            self._queue(conn, record, df=True)
        else:
            for piece in fragment_ipv4(frame, conn.mtu):
                self._queue(conn, FrameRecord(send.src, send.dst, piece), df=True)

    def _too_big(self, conn: SleeveConnection, frame: bytes, captured: bool) -> None:
        """A DF frame over the path MTU: tell the sending container (unicast frames from
        our own bridge only: that is where the ICMP must go), else drop it."""
        self.counters.frames_too_big += 1
        unicast = frame[0] & 1 == 0
        reply = icmp_frag_needed(frame, conn.mtu) if captured and unicast else None
        if reply is not None:
            self._inject.append(reply)

    def _queue(self, conn: SleeveConnection, record: FrameRecord, df: bool) -> None:
        key = (conn.remote, df)
        crypto = self._crypto_for(conn)  # first: new keys drop the peer's old batches
        batch = self._batches.get(key)
        limit = conn.max_payload() if df else MAX_UDP_PAYLOAD
        if batch is None:
            batch = self._batches[key] = Batcher(limit, crypto.sealer.packet_overhead)
        batch.max_payload = limit
        for body in batch.add(record):
            self._seal_out(conn, crypto, body, df)
        if batch.pending:
            self._unflushed[key] = None

    def _flush(self) -> None:
        """Close the batches holding records (not every peer's batcher: O(peers sent to))."""
        if not self._unflushed:
            return
        keys, self._unflushed = self._unflushed, {}
        for peer, df in keys:
            batch = self._batches.get((peer, df))
            body = batch.flush() if batch is not None else None
            conn = self.overlay.sleeve_connection(peer)
            if body is not None and conn is not None:
                self._seal_out(conn, self._crypto_for(conn), body, df)

    def _seal_out(self, conn: SleeveConnection, crypto: _Crypto, body: bytes, df: bool) -> None:
        if conn.remote_addr is not None:
            payload = crypto.sealer.seal(body, df)
            self._udp.append(UdpSend(conn.remote_addr, payload, df, conn.remote))

    def _crypto_for(self, conn: SleeveConnection) -> _Crypto:
        crypto = self._crypto.get(conn.remote)
        if crypto is None or crypto.conn is not conn:
            if conn.session_key is None:
                crypto = _Crypto(conn, PlainSealer(self.ourself), None)
            else:
                sealer = SleeveEncryptor(conn.session_key, conn.outbound, self.ourself)
                opener = SleeveDecryptor(conn.session_key, not conn.outbound)
                crypto = _Crypto(conn, sealer, opener)
            self._crypto[conn.remote] = crypto
            self._batches.pop((conn.remote, True), None)
            self._batches.pop((conn.remote, False), None)
        return crypto

    def stats(self) -> dict[str, int]:
        """Counters for /report (``Router.DatapathStats``) and /metrics."""
        fwd = self.forwarder.counters
        stats = {
            f"{action}_{unit}": getattr(getattr(fwd, action), unit)
            for action in ("forwarded", "flooded", "relayed", "injected", "dropped")
            for unit in ("frames", "bytes")
        }
        c = self.counters
        stats.update(
            packets_in=c.packets_in,
            packets_out=c.packets_out,
            dropped_packets=c.dropped_packets,
            replayed_packets=c.replayed_packets,
            frames_too_big=c.frames_too_big,
        )
        for kind, sent in c.special_bytes.items():  # sleeve_heartbeat_bytes, ...
            stats[f"sleeve_{kind.replace(' ', '_')}_bytes"] = sent
        return stats

    def expire_macs(self, now: float) -> int:
        """Drop MACs not seen for MAC_MAX_AGE; run about once a minute."""
        return len(self.forwarder.macs.expire(now))

    def forget_peer(self, peer: int) -> None:
        self._crypto.pop(peer, None)
        self.forwarder.macs.forget_peer(peer)
