"""The overlay switch (``weave:router/overlay_switch.go``), sans-IO: one mesh overlay made
of several, each connection carried by the best of its forwarders.

Overlays register in preference order (fastdp, the fast sleeve, then the
Weave-compatible sleeve); ``Overlays`` advertises their names in that order. A connection
gets one forwarder per overlay both ends have; the control-message index of each is its
position in the common list, in our order (weave-wire §6.1), so both ends agree. All
forwarders run side by side; the first one that is established and healthy carries the
traffic, else the first established one. A peer without the ``Overlays`` feature (compat
mode, §6.3) gets the compat overlay alone, with unwrapped control messages.

Every change of carrier is logged with its reason (``overlay_switch ->[peer] using
sleeve: fastdp: no heartbeat ack for 16s``) and counted; ``attrs()`` shows the carrier
and, when it is not the most preferred forwarder, why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import Enum
from typing import Any, Protocol

import msgspec

from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.fast_sleeve import FAST_SLEEVE, FAST_SLEEVE_OVERLAY
from weavenet.core.overlay.fastdp import FASTDP, FASTDP_OVERLAY
from weavenet.core.overlay.sleeve import SleeveConnection
from weavenet.core.overlay.sleeve_overlay import SLEEVE, SleeveOverlay
from weavenet.core.peername import format_peer_name

log = logging.getLogger("weavenet.overlay")


class Forwarder(Protocol):
    """One overlay's forwarder on one connection (an OverlayConnection plus health)."""

    @property
    def established(self) -> bool: ...

    @property
    def healthy(self) -> bool: ...

    @property
    def error(self) -> str | None: ...

    @property
    def why(self) -> str: ...

    def confirm(self, now: float) -> None: ...

    def control_message(self, tag: int, payload: bytes, now: float) -> None: ...

    def take_control_messages(self) -> list[tuple[int, bytes]]: ...

    def peer_heard(self, now: float) -> None: ...

    def tick(self, now: float) -> float: ...

    def set_standby(self, standby: bool, now: float) -> float:
        """Whether a healthy, more preferred forwarder carries the peer; returns when to
        tick next if that moved earlier, else inf."""
        ...

    def attrs(self) -> dict[str, Any]: ...

    def stop(self) -> None: ...


class SubOverlay(Protocol):
    @property
    def name(self) -> str: ...

    def prepare_forwarder(self, params: OverlayParams, index: int | None) -> Forwarder | None:
        """``index`` None: compat mode (unwrapped control messages). Returns None when
        this overlay does not apply to this connection (it keeps its index)."""
        ...

    def diagnostics(self) -> dict[str, Any]: ...


class SwitchState(Enum):
    PENDING = "pending"  # no forwarder established yet
    BEST = "best"  # carried by the most preferred forwarder
    FALLBACK = "fallback"  # carried by a less preferred one: a better one is not healthy
    FAILED = "failed"  # every forwarder failed: the mesh connection closes


class Seen(Enum):
    """What a look at the forwarders found: the event of the switch's state machine."""

    BEST_USABLE = "best usable"
    OTHER_USABLE = "only a less preferred forwarder usable"
    NONE_USABLE = "none usable yet"
    ALL_FAILED = "all failed"


TRANSITIONS: dict[tuple[SwitchState, Seen], SwitchState] = {
    (state, seen): target
    for state in SwitchState
    if state is not SwitchState.FAILED
    for seen, target in (
        (Seen.BEST_USABLE, SwitchState.BEST),
        (Seen.OTHER_USABLE, SwitchState.FALLBACK),
        (Seen.NONE_USABLE, SwitchState.PENDING),
        (Seen.ALL_FAILED, SwitchState.FAILED),
    )
}


def choose(forwarders: Sequence[Forwarder]) -> int | None:
    """Go's chooseBest: the first established healthy forwarder, else the first
    established working one."""
    working = [i for i, f in enumerate(forwarders) if f.error is None and f.established]
    for i in working:
        if forwarders[i].healthy:
            return i
    return working[0] if working else None


class SwitchConnection(msgspec.Struct):
    remote: int
    names: list[str]  # display names, parallel to forwarders
    forwarders: list[Forwarder]
    state: SwitchState = SwitchState.PENDING
    using: str | None = None
    reason: str = "no forwarder established yet"
    switches: int = 0
    _error: str | None = None
    _stopped: bool = False
    _seen_key: tuple[tuple[bool, bool, bool], ...] = ()

    # ---- OverlayConnection --------------------------------------------------------------
    @property
    def established(self) -> bool:
        return any(f.established and f.error is None for f in self.forwarders)

    @property
    def error(self) -> str | None:
        return self._error

    def confirm(self, now: float) -> None:
        for fwd in self.forwarders:
            fwd.confirm(now)
        self.reselect(now)

    def control_message(self, tag: int, payload: bytes, now: float) -> None:
        for fwd in self.forwarders:  # each checks the index it was given (or compat tags)
            fwd.control_message(tag, payload, now)
        self.reselect(now)

    def take_control_messages(self) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        for fwd in self.forwarders:
            out.extend(fwd.take_control_messages())
        return out

    def peer_heard(self, now: float) -> None:
        for fwd in self.forwarders:
            fwd.peer_heard(now)

    def tick(self, now: float) -> float:
        wake = min((fwd.tick(now) for fwd in self.forwarders), default=float("inf"))
        return min(wake, self.reselect(now))

    def attrs(self) -> dict[str, Any]:
        index = self._index(self.using) if self.using is not None else 0
        attrs = dict(self.forwarders[index or 0].attrs()) if self.forwarders else {}
        if self.state is SwitchState.FALLBACK:
            attrs["reason"] = self.reason
        return attrs

    def stop(self) -> None:
        """The mesh connection is gone: nothing carries this peer's traffic any more."""
        for fwd in self.forwarders:
            fwd.stop()
        self.using, self.reason, self._stopped = None, "connection closed", True

    # ---- selection ----------------------------------------------------------------------
    def forwarder(self, name: str) -> Forwarder | None:
        index = self._index(name)
        return self.forwarders[index] if index is not None else None

    def _index(self, name: str) -> int | None:
        return self.names.index(name) if name in self.names else None

    def reselect(self, now: float) -> float:
        """Choose the carrier; returns when to tick next if a forwarder promoted from
        standby needs it earlier (else inf)."""
        if self._stopped:
            return float("inf")
        # everything below follows from each forwarder's (working, established, healthy):
        # unchanged, nothing would change (reselect runs for every heartbeat and ack)
        key = tuple((f.error is None, f.established, f.healthy) for f in self.forwarders)
        if key == self._seen_key:
            return float("inf")
        self._seen_key = key
        failed = [(n, f.error) for n, f in zip(self.names, self.forwarders, strict=True) if f.error]
        best = choose(self.forwarders)
        if self.forwarders and len(failed) == len(self.forwarders):
            seen = Seen.ALL_FAILED
        elif best is None:
            seen = Seen.NONE_USABLE
        else:
            seen = Seen.BEST_USABLE if best == self._first_working() else Seen.OTHER_USABLE
        self.state = TRANSITIONS.get((self.state, seen), self.state)
        if self.state is SwitchState.FAILED:
            self._error = self._error or "; ".join(f"{n}: {e}" for n, e in failed)
            return float("inf")
        using = self.names[best] if best is not None else None
        if using != self.using:
            self.using = using
            self.switches += 1
            self.reason = self._explain(best)
            if using is not None:
                peer = format_peer_name(self.remote)
                log.info("overlay_switch ->[%s] using %s: %s", peer, using, self.reason)
        return self._set_standby(best, now)

    def _set_standby(self, best: int | None, now: float) -> float:
        """Forwarders behind a healthy carrier are on standby; the others are not."""
        carried = best is not None and self.forwarders[best].healthy
        wake = float("inf")
        for i, fwd in enumerate(self.forwarders):
            wake = min(wake, fwd.set_standby(carried and i > (best or 0), now))
        return wake

    def _first_working(self) -> int | None:
        return next((i for i, f in enumerate(self.forwarders) if f.error is None), None)

    def _explain(self, best: int | None) -> str:
        if best is None:
            return "no forwarder established yet"
        better = [
            f"{self.names[i]}: {self.forwarders[i].error or self.forwarders[i].why}"
            for i in range(best)
        ]
        if not better:
            return self.forwarders[best].why
        return "; ".join(better)


class OverlaySwitch(msgspec.Struct):
    """The mesh's Overlay: composes sub-overlays in preference order."""

    overlays: Sequence[SubOverlay]
    compat: SleeveOverlay
    connections: dict[int, SwitchConnection] = msgspec.field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.overlays)

    def add_features(self, features: dict[str, str]) -> None:
        features["Overlays"] = " ".join(self.names)

    def prepare_connection(self, params: OverlayParams) -> SwitchConnection:
        if params.remote_overlays is None:
            pairs: list[tuple[SubOverlay, Forwarder | None]] = [
                (self.compat, self.compat.prepare_forwarder(params, None))
            ]
        else:
            common = [o for o in self.overlays if o.name in params.remote_overlays]
            pairs = [(o, o.prepare_forwarder(params, i)) for i, o in enumerate(common)]
        names = [o.name for o, f in pairs if f is not None]
        forwarders = [f for _, f in pairs if f is not None]
        for fwd in forwarders[1:]:  # a faster overlay of ours comes first
            if isinstance(fwd, SleeveConnection):
                fwd.discovery_deferred = True
        conn = SwitchConnection(params.remote_name, [_display(n) for n in names], forwarders)
        if not forwarders:
            theirs = list(params.remote_overlays or ())
            conn._error = f"no common overlay: ours {list(self.names)}, theirs {theirs}"
            conn.state = SwitchState.FAILED
        old = self.connections.get(params.remote_name)
        if old is not None:
            old.stop()
        self.connections[params.remote_name] = conn
        return conn

    def overlay_named(self, name: str) -> SubOverlay | None:
        """The sub-overlay advertised as ``name``, if this switch has it."""
        return next((o for o in self.overlays if o.name == name), None)

    def carrier(self, peer: int) -> str | None:
        conn = self.connections.get(peer)
        return conn.using if conn is not None else None

    def peers_using(self, name: str) -> list[int]:
        return [peer for peer, conn in self.connections.items() if conn.using == name]

    # ---- the userspace datapath's view ----------------------------------------------------
    def sleeve_connection(self, peer: int) -> SleeveConnection | None:
        return self.compat.connections.get(peer)

    def sleeve_connections(self) -> list[SleeveConnection]:
        return list(self.compat.connections.values())

    def take_ready(self) -> list[SleeveConnection]:
        return self.compat.take_ready()

    def diagnostics(self) -> dict[str, Any]:
        """Each overlay's entry under its display name (Go: ``fastdp``, ``sleeve``)."""
        out: dict[str, Any] = {}
        for overlay in self.overlays:
            out.update(overlay.diagnostics())
        return out


def _display(name: str) -> str:
    """Advertised name -> the name status shows (our VXLAN overlay shows as fastdp)."""
    return {FASTDP_OVERLAY: FASTDP, FAST_SLEEVE_OVERLAY: FAST_SLEEVE}.get(name, name)


__all__ = ["SLEEVE", "OverlaySwitch", "SubOverlay", "SwitchConnection", "SwitchState"]
