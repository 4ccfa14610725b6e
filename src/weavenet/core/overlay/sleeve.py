"""One sleeve forwarder: the per-connection state machine of weave's sleeve overlay
(router/sleeve.go), sans-IO.

Timeline (weave-wire §7.5): after the mesh confirms the connection we heartbeat every
500 ms over UDP (DF path); the peer acknowledges our first valid heartbeat with a TCP
control message *ConnectionEstablished*, which makes us established and slows heartbeats
to 10 s. Then we test IP fragmentation (one 60001-byte frame on the non-DF path) and
discover the path MTU: a 60000-byte probe on the DF path fails locally with EMSGSIZE,
telling us the kernel's PMTU, and a binary search with MTU-test frames the peer echoes
back (*PMTUVerified*) finds the largest frame that really arrives. No heartbeat for
60 s is fatal.

Go runs both tests on every sleeve forwarder, even one that only backs up fastdp: about
70 KB per peer, most of what a router sent while a mesh converged. When a faster overlay
of ours shares the connection (``discovery_deferred``), the tests wait until the sleeve
is needed: :meth:`need_path`, called when a frame bigger than :data:`MIN_MTU` (which fits
every path) goes through it. Connections to Go peers, where the sleeve is the only
overlay, test at once, as Go does.

Inputs: :meth:`confirm`, :meth:`tick`, :meth:`special_frame` (a control frame that came
in a UDP packet), :meth:`control_message` (TCP), :meth:`send_failed` (EMSGSIZE).
Outputs: UDP datagrams (:meth:`take_datagrams`) and TCP control messages
(:meth:`take_control_messages`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from weavenet.core.overlay.ready import ReadyList
from weavenet.core.overlay.sleeve_codec import (
    FRAME_OVERHEAD,
    MAX_UDP_PAYLOAD,
    FrameRecord,
    Special,
    frag_test_frame,
    heartbeat_frame,
    mtu_test_frame,
    overhead_df,
    pmtu_probe_frame,
)

FAST_HEARTBEAT = 0.5
# Until established the gap doubles up to this (Go keeps 0.5 s): a starved peer answers
# late, and a constant fast pace on every forming connection made it later still.
FAST_HEARTBEAT_MAX = 2.0
SLOW_HEARTBEAT = 10.0
HEARTBEAT_TIMEOUT = 60.0
FRAG_TEST_INTERVAL = 300.0
MTU_VERIFY_ATTEMPTS = 8
MTU_VERIFY_TIMEOUT = 0.01  # doubled per attempt
MIN_MTU = 552  # assumed to work everywhere
UDP_IP_OVERHEAD = 28

# sleeve's control message sub-tags (weave-wire §6.2)
CONNECTION_ESTABLISHED, FRAGMENTATION_RECEIVED, PMTU_VERIFIED = 1, 2, 3
OVERLAY_CONTROL_TAG = 7


class Datagram(msgspec.Struct, frozen=True):
    """A UDP payload's content for the peer: the shell frames (and maybe seals) it."""

    records: tuple[FrameRecord, ...]
    df: bool
    kind: str = "data"  # for the counters: heartbeat, fragtest, pmtu probe, mtutest


class MtuSearch(msgspec.Struct):
    low: int  # known good
    high: int  # known bad (exclusive)
    candidate: int = 0
    attempt: int = 0
    deadline: float = float("inf")


class SleeveConnection(msgspec.Struct):
    local: int
    remote: int
    conn_uid: int
    encrypted: bool
    remote_addr: tuple[str, int] | None  # known at once on the outbound side
    control_index: int | None  # index in the common overlay list; None: compat mode
    established: bool = False
    error: str | None = None
    mtu: int = 0  # 0 until discovered: frames then go unfragmented up to the UDP limit
    stack_frag: bool = False  # the peer received our fragmented test frame
    outbound: bool = False  # we dialled the mesh connection (selects the nonce bit)
    session_key: bytes | None = None  # set when frames are NaCl-sealed
    discovery_deferred: bool = False  # a faster overlay shares the connection (module doc)
    ready: ReadyList[SleeveConnection] | None = None  # the overlay's: we have datagrams
    discovering: bool = False  # the fragmentation test and MTU search have started
    _path_wanted: bool = False  # need_path() was called
    _confirmed: bool = False
    _heard: bool = False  # we acknowledged the peer's first heartbeat
    _interval: float = FAST_HEARTBEAT
    _next_heartbeat: float = float("inf")
    _heartbeat_deadline: float = float("inf")
    _next_frag_test: float = float("inf")
    _search: MtuSearch | None = None
    _datagrams: list[Datagram] = msgspec.field(default_factory=list)
    _control: list[tuple[int, bytes]] = msgspec.field(default_factory=list)

    @property
    def active(self) -> bool:
        """Confirmed by the mesh, not stopped, not failed: may carry traffic."""
        return self._confirmed and self.error is None

    @property
    def healthy(self) -> bool:
        """Established and not failed (a sleeve that stops hearing its peer fails)."""
        return self.established and self.error is None

    @property
    def why(self) -> str:
        if self.error is not None:
            return self.error
        if self.established:
            return "heartbeats over UDP acknowledged"
        return "heartbeating over UDP, waiting for the first ack"

    # ---- the mesh side ---------------------------------------------------------------
    def confirm(self, now: float) -> None:
        self._confirmed = True
        self._heartbeat_deadline = now + HEARTBEAT_TIMEOUT
        self._next_heartbeat = now
        self.tick(now)

    def control_message(self, tag: int, payload: bytes, now: float) -> None:
        """A TCP control message for us: tag 1-3 (compat) or 7 + index + sub-tag."""
        if tag == OVERLAY_CONTROL_TAG:
            if len(payload) < 2 or payload[0] != self.control_index:
                return
            tag, payload = payload[1], payload[2:]
        if tag == CONNECTION_ESTABLISHED:
            self._became_established(now)
        elif tag == FRAGMENTATION_RECEIVED:
            self.stack_frag = True
        elif tag == PMTU_VERIFIED and len(payload) >= 2:
            self._mtu_verified(int.from_bytes(payload[:2], "big"), now)

    def take_control_messages(self) -> list[tuple[int, bytes]]:
        out, self._control = self._control, []
        return out

    def peer_heard(self, now: float) -> None:
        return None  # its health is Go's: heartbeats received over UDP

    def take_datagrams(self) -> list[Datagram]:
        out, self._datagrams = self._datagrams, []
        return out

    def attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"name": "sleeve"}
        if self.mtu:
            attrs["mtu"] = self.mtu
        return attrs

    def stop(self) -> None:
        self._confirmed = False

    def set_standby(self, standby: bool, now: float) -> float:
        """The sleeve keeps Go's heartbeat pace on standby too: a Go peer drops a sleeve
        it has not heard from in HEARTBEAT_TIMEOUT."""
        return float("inf")

    # ---- timers ------------------------------------------------------------------------
    def tick(self, now: float) -> float:
        """Run what is due; return when to be called next."""
        if not self._confirmed or self.error is not None:
            return float("inf")
        if now >= self._heartbeat_deadline:
            self.error = "no heartbeat from the peer for 60s: sleeve forwarder timed out"
            return float("inf")
        if now >= self._next_heartbeat and self.remote_addr is not None:
            self._send_special(heartbeat_frame(self.conn_uid), df=True, kind="heartbeat")
            self._next_heartbeat = now + self._interval
            if not self.established:
                self._interval = min(2 * self._interval, FAST_HEARTBEAT_MAX)
        if now >= self._next_frag_test:
            self._send_special(frag_test_frame(), df=False, kind="fragtest")
            self._next_frag_test = now + FRAG_TEST_INTERVAL
        if self._search is not None and now >= self._search.deadline:
            self._mtu_test_timed_out(now)
        return min(
            self._heartbeat_deadline,
            self._next_heartbeat if self.remote_addr is not None else float("inf"),
            self._next_frag_test,
            self._search.deadline if self._search is not None else float("inf"),
        )

    # ---- the UDP side -------------------------------------------------------------------
    def special_frame(self, special: Special, addr: tuple[str, int], now: float) -> None:
        """A control frame from the peer (record src = the peer, dst = us)."""
        if special.kind == "heartbeat":
            self._heartbeat(special.conn_uid, addr, now)
        elif special.kind == "fragtest" and special.valid:
            self._send_control(FRAGMENTATION_RECEIVED, b"")
        elif special.kind == "mtutest":
            self._send_control(PMTU_VERIFIED, special.mtu.to_bytes(2, "big"))

    def _heartbeat(self, conn_uid: int, addr: tuple[str, int], now: float) -> None:
        if conn_uid != self.conn_uid:
            return
        first_address = self.remote_addr is None
        self.remote_addr = addr  # follow the peer through NAT rebinding
        self._heartbeat_deadline = now + HEARTBEAT_TIMEOUT
        if first_address:
            self._next_heartbeat = now
            self.tick(now)
        if not self._heard:
            self._heard = True
            self._send_control(CONNECTION_ESTABLISHED, b"")

    def send_failed(self, kernel_pmtu: int, now: float) -> None:
        """A DF send failed with EMSGSIZE; ``kernel_pmtu`` is the route's path MTU."""
        top = kernel_pmtu - overhead_df(self.encrypted)
        if top < MIN_MTU:
            self.mtu = MIN_MTU
            self._search = None
            return
        self._search = MtuSearch(low=MIN_MTU, high=top + 1)
        self._send_mtu_test(now)

    # ---- state changes ------------------------------------------------------------------
    def _became_established(self, now: float) -> None:
        if self.established:
            return
        self.established = True
        self._interval = SLOW_HEARTBEAT
        self._next_heartbeat = min(self._next_heartbeat, now + SLOW_HEARTBEAT)
        if self.discovery_deferred and not self._path_wanted:
            self.tick(now)
        else:
            self._start_discovery(now)

    def need_path(self, now: float) -> None:
        """A frame that may not fit every path goes through us: if the tests were
        deferred, run them now (once established)."""
        self._path_wanted = True
        if self.established and self.error is None:
            self._start_discovery(now)

    def _start_discovery(self, now: float) -> None:
        if self.discovering:
            return
        self.discovering = True
        self._next_frag_test = now  # test fragmentation at once, then every 5 minutes
        self.tick(now)
        self._send_special(pmtu_probe_frame(), df=True, kind="pmtu probe")

    def _send_mtu_test(self, now: float) -> None:
        search = self._search
        assert search is not None
        search.candidate = (search.low + search.high) // 2
        search.deadline = now + MTU_VERIFY_TIMEOUT * (2**search.attempt)
        self._send_special(mtu_test_frame(search.candidate), df=True, kind="mtutest")

    def _mtu_verified(self, mtu: int, now: float) -> None:
        search = self._search
        if search is None or mtu != search.candidate:
            return
        search.low, search.attempt = mtu, 0
        self._next_mtu_step(now)

    def _mtu_test_timed_out(self, now: float) -> None:
        search = self._search
        assert search is not None
        search.attempt += 1
        if search.attempt < MTU_VERIFY_ATTEMPTS:
            self._send_mtu_test(now)  # the same candidate again, with a longer wait
            return
        search.high, search.attempt = search.candidate, 0
        self._next_mtu_step(now)

    def _next_mtu_step(self, now: float) -> None:
        search = self._search
        assert search is not None
        if search.high - search.low <= 1:
            self.mtu = search.low
            self._search = None
        else:
            self._send_mtu_test(now)

    # ---- output helpers ------------------------------------------------------------------
    def _send_special(self, frame: bytes, df: bool, kind: str) -> None:
        record = FrameRecord(self.local, self.remote, frame)
        if not self._datagrams and self.ready is not None:
            self.ready.add(self)
        self._datagrams.append(Datagram((record,), df, kind))

    def _send_control(self, sub_tag: int, payload: bytes) -> None:
        if self.control_index is None:
            self._control.append((sub_tag, payload))
        else:
            body = bytes((self.control_index, sub_tag)) + payload
            self._control.append((OVERLAY_CONTROL_TAG, body))

    def max_payload(self) -> int:
        """Largest UDP payload for data frames on the DF path."""
        if not self.mtu:
            return MAX_UDP_PAYLOAD
        return self.mtu + overhead_df(self.encrypted) - UDP_IP_OVERHEAD

    def frame_fits(self, frame: bytes) -> bool:
        return not self.mtu or len(frame) <= self.mtu + FRAME_OVERHEAD
