"""Which addresses to dial, and when: mesh's connectionMaker as a pure state machine.

Targets come from the user (``direct`` peers, kept in order) and, with discovery on, from
the topology: every address a peer of ours is connected to and we are not. Failed
targets back off exponentially with jitter (2 s, x1.5, capped at 6 min; the real delay
is uniform in [i/2, 3i/2)), so that many routers restarting together do not dial in step.
A refused dial (the host answered, nobody listens on the port: its router is starting
or restarting) is retried sooner, from 0.5 s up, until that catches up with the usual
backoff: in a launch of many hosts at once most first dials are refused, and a 1-3 s
wait on each held up the hosts behind them.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterable, Sequence, Set
from enum import Enum

import msgspec

from weavenet.core.mesh.addresses import host_of, join_host_port, split_host_port
from weavenet.core.mesh.peer import Peer

INITIAL_INTERVAL = 2.0
REFUSED_INTERVAL = 0.5
MAX_INTERVAL = 360.0
RESET_AFTER = 60.0
NEVER = float("inf")
# Both ends of a pair usually discover each other at the same moment. The end with the
# higher name waits a little before dialling, so that normally only the lower end dials:
# no duplicate connections to resolve, and still a connection when only one end can dial.
DISCOVERY_DEFER = 5.0
# A target whose host has an inbound connection still in its handshake is probably that
# very peer dialling us: wait this long and look again rather than dial it too (on a
# starved machine a handshake takes seconds, and each dial made meanwhile became a
# duplicate connection, torn down by the tie-break after both handshakes).
HANDSHAKE_WAIT = 1.0


class TargetState(Enum):
    WAITING = "waiting"
    ATTEMPTING = "attempting"
    CONNECTED = "connected"
    SUSPENDED = "suspended"


class Target(msgspec.Struct):
    address: str
    state: TargetState = TargetState.WAITING
    # when it may be dialled; a new target's is its creation (mesh's nextTryNow), from
    # which RESET_AFTER is counted: a connection that ends sooner backs off
    try_after: float = 0.0
    try_interval: float = INITIAL_INTERVAL
    refused_interval: float = REFUSED_INTERVAL
    last_error: str | None = None

    def try_later(self, now: float, rng: random.Random) -> None:
        self.try_after = now + self.try_interval * (0.5 + rng.random())
        self.try_interval = min(self.try_interval * 1.5, MAX_INTERVAL)

    def try_soon(self, now: float, rng: random.Random) -> None:
        """After a refused dial: the shorter backoff until it reaches the usual first
        interval (four quick retries in ~3.5 s), then the usual backoff."""
        if self.refused_interval >= INITIAL_INTERVAL:
            self.try_later(now, rng)
            return
        self.try_after = now + self.refused_interval * (0.5 + rng.random())
        self.refused_interval *= 1.5

    def try_now(self, now: float) -> None:
        """Retry at once, remembering when: a connection that lived past RESET_AFTER
        starts its backoff afresh, but one that fails again right away backs off."""
        self.try_after = now
        self.try_interval = INITIAL_INTERVAL
        self.refused_interval = REFUSED_INTERVAL


class OurConnection(msgspec.Struct, frozen=True):
    """What the maker needs to know about one of our live connections."""

    remote_name: int
    remote_address: str
    outbound: bool


# A connection some other peer reported in its topology entry (for discovery):
# (remote peer name, remote address as that peer saw it, whether that peer dialled it).
KnownConnection = tuple[int, str, bool]


class ConnectionMaker(msgspec.Struct):
    port: int
    discovery: bool
    rng: random.Random
    conn_limit: int = 0
    direct: dict[str, str] = msgspec.field(default_factory=dict)  # as given -> host:port
    targets: dict[str, Target] = msgspec.field(default_factory=dict)
    termination_count: int = 0
    _wakeup: float | None = None  # next_wakeup's memo; None after any target change

    def connect(self, peers: Sequence[str], replace: bool) -> list[str]:
        """Add (or with ``replace`` set) the direct peers; returns one error per bad address."""
        self._wakeup = None
        parsed, errors = {}, []
        for peer in peers:
            try:
                host, port = split_host_port(peer, self.port)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            parsed[peer.strip()] = join_host_port(host, port)
        if errors:
            return errors
        if replace:
            self.direct = {}
        self.direct.update(parsed)
        return []

    def forget(self, peers: Iterable[str]) -> None:
        self._wakeup = None
        for peer in peers:
            self.direct.pop(peer.strip(), None)

    def direct_peers(self) -> list[str]:
        return list(self.direct)

    def plan(
        self,
        now: float,
        ours: Sequence[OurConnection],
        known: Iterable[KnownConnection],
        us: int,
        handshaking: Iterable[str] = (),
    ) -> list[str]:
        """Recompute the target table and return the addresses to dial now;
        ``handshaking``: the remote addresses of inbound connections in their handshake."""
        self._wakeup = None
        connected_peers = {c.remote_name for c in ours}
        connected_addrs = {c.remote_address for c in ours}
        inbound_ips = {host_of(c.remote_address) for c in ours if not c.outbound}
        valid: set[str] = set()
        for address in self.direct.values():
            if not self._already_inbound(address, inbound_ips):
                self._add_target(address, connected_addrs, valid, now)
        if self.discovery and not self._at_limit(len(ours)):
            for remote_name, remote_address, outbound in known:
                if remote_name == us or remote_name in connected_peers:
                    continue
                address = self._discovered_address(remote_address, outbound)
                fresh = address not in self.targets
                self._add_target(address, connected_addrs, valid, now)
                if fresh and address in self.targets and us > remote_name:
                    self.targets[address].try_after = now + DISCOVERY_DEFER * (
                        1 + self.rng.random()
                    )
        calling = {host_of(address) for address in handshaking}
        return self._due_targets(now, valid, set(self.direct.values()), calling)

    def _already_inbound(self, address: str, inbound_ips: set[str]) -> bool:
        host, port = split_host_port(address, self.port)
        return port == self.port and host in inbound_ips

    def _at_limit(self, count: int) -> bool:
        return self.conn_limit > 0 and count >= self.conn_limit

    def _discovered_address(self, remote_address: str, outbound: bool) -> str:
        if outbound:
            return remote_address
        # the remote end of an inbound connection is an ephemeral port: use the mesh port
        return join_host_port(host_of(remote_address), self.port)

    def _add_target(self, address: str, connected: set[str], valid: set[str], now: float) -> None:
        if address in connected:
            return
        valid.add(address)
        if address not in self.targets:
            self.targets[address] = Target(address, try_after=now)

    def _due_targets(
        self, now: float, valid: set[str], direct: set[str], calling: set[str]
    ) -> list[str]:
        due = []
        for address, target in list(self.targets.items()):
            if target.state not in (TargetState.WAITING, TargetState.SUSPENDED):
                continue
            if address not in valid:
                if address in direct:
                    target.state = TargetState.SUSPENDED
                else:
                    del self.targets[address]
                continue
            target.state = TargetState.WAITING
            if target.try_after <= now and self._already_inbound(address, calling):
                target.try_after = now + HANDSHAKE_WAIT
            elif target.try_after <= now:
                target.state = TargetState.ATTEMPTING
                due.append(address)
        return due

    def next_wakeup(self) -> float:
        """When a waiting target is next due (memoised: asked after every event)."""
        if self._wakeup is None:
            self._wakeup = min(
                (t.try_after for t in self.targets.values() if t.state == TargetState.WAITING),
                default=NEVER,
            )
        return self._wakeup

    def dial_failed(self, address: str, error: str, now: float, refused: bool = False) -> None:
        """A dial did not connect; ``refused``: the host refused it (nobody listening)."""
        self._wakeup = None
        target = self.targets.get(address)
        if target is not None:
            target.state = TargetState.WAITING
            target.last_error = error
            if refused:
                target.try_soon(now, self.rng)
            else:
                target.try_later(now, self.rng)

    def connection_added(self, address: str, outbound: bool) -> None:
        self._wakeup = None
        target = self.targets.get(address)
        if outbound and target is not None:
            target.state = TargetState.CONNECTED

    def connection_terminated(
        self, address: str, error: str, now: float, retry: bool = True, counted: bool = True
    ) -> None:
        """A connection (or an attempt past the dial) ended; ``retry`` False never retries."""
        self._wakeup = None
        if counted:
            self.termination_count += 1
        target = self.targets.get(address)
        if target is None:
            return
        target.state = TargetState.WAITING
        target.last_error = error
        if not retry:
            target.try_after = NEVER
        elif now > target.try_after + RESET_AFTER:
            target.try_now(now)
        else:
            target.try_later(now, self.rng)

    def status(self, wall_clock_offset: float) -> list[dict[str, object]]:
        """Weave's LocalConnectionStatus rows for targets without a live connection."""
        rows: list[dict[str, object]] = []
        for address, target in self.targets.items():
            state, info = _target_status(target, wall_clock_offset)
            if state:
                rows.append({"Address": address, "Outbound": True, "State": state, "Info": info})
        return rows

    def state_counts(self) -> dict[str, int]:
        """How many of :meth:`status`'s rows are in each ``State``, without building
        them (each failed one formats its retry time)."""
        counts: dict[str, int] = {}
        for target in self.targets.values():
            state = _target_state(target)
            if state:
                counts[state] = counts.get(state, 0) + 1
        return counts


def _target_state(target: Target) -> str:
    """Weave's ``State`` of a target without a live connection ("" for a connected one)."""
    if target.state == TargetState.WAITING:
        return "connecting" if target.last_error is None else "failed"
    if target.state == TargetState.ATTEMPTING:
        return "connecting" if target.last_error is None else "retrying"
    return ""


def _target_status(target: Target, wall_clock_offset: float) -> tuple[str, str]:
    state = _target_state(target)
    if state == "failed":
        when = (
            "never"
            if target.try_after == NEVER
            else _format_time(target.try_after + wall_clock_offset)
        )
        return state, f"{target.last_error}, retry: {when}"
    if state == "retrying":
        return state, str(target.last_error)
    return state, ""


def _format_time(epoch: float) -> str:
    """Go's time.Time.String() shape, in UTC: ``2015-08-06 18:55:38.246 +0000 UTC``."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} +0000 UTC"


def discovery_candidates(
    entries: Iterable[Peer], names: set[int], us: int, connected: Set[int]
) -> set[tuple[int, str, bool]]:
    """(remote, address, outbound) of every connection the ``entries`` announce to one of
    ``names`` (the entries' names) that we (``us``) are not ``connected`` to: only those
    matter for discovery, and the set folds the many reports of one connection into one
    candidate. The peers not connected are ``names`` less ours, and each entry's list is
    matched against them from the smaller side: walking each of N peers' N-1 connections
    made this a tenth of a converging router's core CPU at N=100 (simulated; it runs
    after every burst of topology news). A Peers table is closed: every remote an entry
    lists has an entry of its own (collection keeps a peer that a held entry lists), so
    no candidate is missed by matching against ``names``."""
    unconnected = names - connected
    unconnected.discard(us)
    known: set[tuple[int, str, bool]] = set()
    if not unconnected:
        return known
    for peer in entries:
        connections = peer.connections
        if peer.name == us or not connections:
            continue
        if len(unconnected) < len(connections):
            remotes = [r for r in unconnected if r in connections]
        else:
            remotes = [r for r in connections if r in unconnected]
        for remote in remotes:
            summary = connections[remote]
            known.add((remote, summary.remote_tcp_addr, summary.outbound))
    return known
