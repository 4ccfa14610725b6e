"""Heartbeat health shared by the overlays that prove a path of their own (fastdp and the
fast sleeve), sans-IO.

A probed forwarder heartbeats over its path to the peer; the peer acknowledges every
heartbeat over the TCP control connection (tag 7, our index, sub-tag 0, empty). Health is
judged on acks because they prove *our* sending direction, the one our choice of overlay
is about; the peer judges its own direction the same way.

Timing, deliberately faster than Go (which says 10 s / 60 s): heartbeats from 0.5 s apart,
doubling up to :data:`PROBE_INTERVAL_MAX`, until the first ack, then every
:data:`SLOW_HEARTBEAT` (a starved peer acks late, and a constant 0.5 s probe on every
forming connection made it later still), or slower in an overlay of more than 32 peers
(:func:`slow_heartbeat`); no ack for :data:`MISSED_ACKS` of those (:data:`ACK_TIMEOUT`
before the first) makes the
forwarder unhealthy (traffic moves to the next overlay), the next ack makes it healthy
again, but only if the peer was heard on the mesh connection within :data:`HEARD_WITHIN`
(``peer_heard``, any message): a peer, or a router, starved of CPU acks late without its
path being at fault, and until it is heard again the verdict waits. Subclasses say what
a heartbeat looks like (:meth:`ProbedForwarder.heartbeat`).

A forwarder on *standby* (the switch carries the peer on a healthy, more preferred one)
heartbeats every :data:`STANDBY_HEARTBEAT` and allows :data:`STANDBY_ACK_TIMEOUT`: it only
has to be known good for when the carrier fails, and heartbeats on every overlay to every
peer were ~15% of a router's CPU at 100 peers. Promoted, it heartbeats at once and is
judged as an active one from its last ack, with :data:`PROMOTION_GRACE` for that first
ack to come back.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from enum import Enum
from typing import Any, TypeVar

import msgspec

from weavenet.core.overlay.ready import ReadyList

FAST_HEARTBEAT = 0.5
SLOW_HEARTBEAT = 4.0
PROBE_INTERVAL_MAX = 2.0
ACK_TIMEOUT = 16.0
# An established, active forwarder's heartbeats: every SLOW_HEARTBEAT up to 32 peers, then
# paced so that an overlay sends at most this many a second, up to Go's 10 s. The ack
# timeout is MISSED_ACKS heartbeats (16 s, then up to 40 s; Go allows 60 s).
HEARTBEATS_PER_SECOND = 8.0
MAX_SLOW_HEARTBEAT = 10.0
MISSED_ACKS = 4
STANDBY_HEARTBEAT = 16.0
STANDBY_ACK_TIMEOUT = 3 * STANDBY_HEARTBEAT
PROMOTION_GRACE = 2.0
# A missing ack is the path's fault only if the peer was heard (any mesh message) this
# recently; otherwise the peer, or we, were starved, and the verdict waits.
HEARD_WITHIN = ACK_TIMEOUT / 2
HEARTBEAT_ACK = 0  # the control sub-tag of an ack (weave-wire §6.2, fastdp's)
OVERLAY_CONTROL_TAG = 7


class State(Enum):
    IDLE = "idle"  # prepared, not yet confirmed by the mesh
    PROBING = "probing"  # heartbeating fast, no ack yet
    HEALTHY = "healthy"  # acks arrive: the peer receives our heartbeats
    UNHEALTHY = "unhealthy"  # acks stopped: on hold, still heartbeating
    STOPPED = "stopped"


class Event(Enum):
    CONFIRM = "confirm"
    ACK = "ack"
    SILENCE = "silence"  # no ack for ACK_TIMEOUT
    STOP = "stop"


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.IDLE, Event.CONFIRM): State.PROBING,
    (State.IDLE, Event.STOP): State.STOPPED,
    (State.PROBING, Event.ACK): State.HEALTHY,
    (State.PROBING, Event.SILENCE): State.UNHEALTHY,
    (State.PROBING, Event.STOP): State.STOPPED,
    (State.HEALTHY, Event.ACK): State.HEALTHY,
    (State.HEALTHY, Event.SILENCE): State.UNHEALTHY,
    (State.HEALTHY, Event.STOP): State.STOPPED,
    (State.UNHEALTHY, Event.ACK): State.HEALTHY,
    (State.UNHEALTHY, Event.SILENCE): State.UNHEALTHY,
    (State.UNHEALTHY, Event.STOP): State.STOPPED,
}


class Heartbeat(msgspec.Struct, frozen=True):
    """Send ``payload`` to ``addr`` over UDP with DF set (the overlay says how)."""

    addr: tuple[str, int]
    payload: bytes
    peer: int


class ProbedForwarder(msgspec.Struct):
    """One connection's forwarder on a heartbeat-proved path (see the module doc)."""

    remote: int
    conn_uid: int
    remote_ip: str
    control_index: int
    port: int
    state: State = State.IDLE
    established: bool = False  # acked at least once (Go's "established" never reverts)
    error: str | None = None  # never fails a connection: it goes on hold instead
    why: str = "waiting for the mesh to confirm the connection"
    ready: ReadyList[ProbedForwarder] | None = None  # the overlay's: we have heartbeats
    standby: bool = False  # behind a healthy, more preferred forwarder (see the module doc)
    _last_ack: float = float("-inf")
    _heard: float = float("-inf")  # the last message from the peer on the mesh connection
    _last_beat: float = float("-inf")
    _probe_interval: float = FAST_HEARTBEAT
    _slow_interval: float = SLOW_HEARTBEAT  # see pace()
    _next_heartbeat: float = float("inf")
    _ack_deadline: float = float("inf")
    _control: list[tuple[int, bytes]] = msgspec.field(default_factory=list)
    _heartbeats: list[Heartbeat] = msgspec.field(default_factory=list)

    # what subclasses say ------------------------------------------------------------------
    acked_why = "heartbeats are acknowledged"

    def heartbeat(self) -> bytes:
        raise NotImplementedError

    def attrs(self) -> dict[str, Any]:
        raise NotImplementedError

    # ---------------------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        return self.state is State.HEALTHY

    def _fire(self, event: Event, why: str) -> None:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is not None:
            self.state, self.why = nxt, why

    def confirm(self, now: float) -> None:
        self._fire(Event.CONFIRM, "heartbeats sent, waiting for the first ack")
        self._next_heartbeat = now
        self._ack_deadline = now + ACK_TIMEOUT
        self.tick(now)

    def control_message(self, tag: int, payload: bytes, now: float) -> None:
        if tag != OVERLAY_CONTROL_TAG or len(payload) < 2 or payload[0] != self.control_index:
            return
        if payload[1] == HEARTBEAT_ACK and self.state is not State.STOPPED:
            if not self.established:
                self._next_heartbeat = min(self._next_heartbeat, now + self._slow_interval)
            self.established = True
            self._last_ack = now
            self._ack_deadline = now + self._ack_timeout()
            self._fire(Event.ACK, self.acked_why)

    def take_control_messages(self) -> list[tuple[int, bytes]]:
        out, self._control = self._control, []
        return out

    def peer_heard(self, now: float) -> None:
        self._heard = now

    def take_heartbeats(self) -> list[Heartbeat]:
        out, self._heartbeats = self._heartbeats, []
        return out

    def tick(self, now: float) -> float:
        if self.state in (State.IDLE, State.STOPPED):
            return float("inf")
        if now >= self._ack_deadline and now - self._heard > HEARD_WITHIN:
            self._ack_deadline = now + PROBE_INTERVAL_MAX  # starved, not silent: look again
        elif now >= self._ack_deadline:
            self._ack_deadline = now + self._ack_timeout()
            gap = f"no heartbeat ack for {self._ack_timeout():g}s (UDP {self.port} blocked?)"
            self._fire(Event.SILENCE, gap)
        if now >= self._next_heartbeat:
            beat = Heartbeat((self.remote_ip, self.port), self.heartbeat(), self.remote)
            if not self._heartbeats and self.ready is not None:
                self.ready.add(self)
            self._heartbeats.append(beat)
            self._last_beat = now
            if not self.established:
                interval = self._probe_interval
                self._probe_interval = min(2 * interval, PROBE_INTERVAL_MAX)
            else:
                interval = STANDBY_HEARTBEAT if self.standby else self._slow_interval
            self._next_heartbeat = now + interval
        return min(self._next_heartbeat, self._ack_deadline)

    def _ack_timeout(self) -> float:
        if not self.established:
            return ACK_TIMEOUT
        return STANDBY_ACK_TIMEOUT if self.standby else MISSED_ACKS * self._slow_interval

    def pace(self, forwarders: int) -> None:
        """Its overlay now has ``forwarders``: heartbeat at :func:`slow_heartbeat`'s
        interval once established (from the next heartbeat on)."""
        self._slow_interval = slow_heartbeat(forwarders)

    def set_standby(self, standby: bool, now: float) -> float:
        """The switch says whether a healthy, more preferred forwarder carries the peer.
        Returns when to tick next if that moved earlier (a promotion), else inf."""
        if standby == self.standby:
            return float("inf")
        self.standby = standby
        if not self.established or self.state is State.STOPPED:
            return float("inf")  # still probing: it keeps its fast pace and first deadline
        if standby:
            self._ack_deadline = max(self._ack_deadline, self._last_ack + STANDBY_ACK_TIMEOUT)
            return float("inf")
        self._ack_deadline = max(self._last_ack + self._ack_timeout(), now + PROMOTION_GRACE)
        fresh = self._last_beat >= now  # one went in this very tick
        self._next_heartbeat = now + self._slow_interval if fresh else now
        return self.tick(now)

    def heartbeat_received(self, now: float) -> None:
        """The peer's heartbeat for this connection arrived: acknowledge it."""
        if self.state is not State.STOPPED:
            self._control.append((OVERLAY_CONTROL_TAG, bytes((self.control_index, HEARTBEAT_ACK))))

    def stop(self) -> None:
        self._fire(Event.STOP, "connection closed")


F = TypeVar("F", bound=ProbedForwarder)


def slow_heartbeat(forwarders: int) -> float:
    """The heartbeat interval of an established, active forwarder in an overlay of
    ``forwarders``: heartbeats on every overlay to every peer were ~15% of a router's
    CPU at 100 peers, and acks from a starved peer come late whatever the pace."""
    return min(max(SLOW_HEARTBEAT, forwarders / HEARTBEATS_PER_SECOND), MAX_SLOW_HEARTBEAT)


def install(connections: MutableMapping[int, F], fwd: F) -> F:
    """``fwd`` becomes its peer's forwarder in an overlay's ``connections`` (the one it
    replaces stops); every forwarder there is paced for the new count."""
    old = connections.get(fwd.remote)
    if old is not None:
        old.stop()
    connections[fwd.remote] = fwd
    _pace_all(connections)
    return fwd


def _pace_all(connections: MutableMapping[int, F]) -> None:
    """Tell every forwarder of an overlay how many there are (see :func:`slow_heartbeat`):
    O(peers) per new peer, not per heartbeat."""
    count = len(connections)
    for fwd in connections.values():
        fwd.pace(count)


def take_all_heartbeats(ready: ReadyList[ProbedForwarder]) -> list[Heartbeat]:
    """The heartbeats the forwarders of one overlay now want sent: only those on its
    ready list are asked (an idle forwarder costs nothing)."""
    return [beat for fwd in ready.drain() for beat in fwd.take_heartbeats()]


def forget_stopped(connections: MutableMapping[int, F], remote: int) -> None:
    """Drop ``remote``'s forwarder once its connection has stopped (peer gone)."""
    fwd = connections.get(remote)
    if fwd is not None and fwd.state is State.STOPPED:
        del connections[remote]
        _pace_all(connections)
