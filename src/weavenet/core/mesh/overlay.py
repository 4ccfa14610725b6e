"""The data-plane seam (mesh overlay.go): how a mesh connection gets its forwarder.

A mesh connection is *established* only once its overlay connection says so; Go routes
data only over connections that both ends report established. The overlay speaks to
its peer through TCP control messages, which it hands back to the router as
``(tag, payload)`` pairs from :meth:`OverlayConnection.take_control_messages`.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec


class OverlayParams(msgspec.Struct, frozen=True):
    remote_name: int
    local_name: int
    outbound: bool
    conn_uid: int
    local_addr: str
    remote_addr: str
    session_key: bytes | None  # set only when the connection is untrusted and encrypted
    remote_overlays: tuple[str, ...] | None  # None: the peer sent no Overlays (compat mode)


class OverlayConnection(Protocol):
    @property
    def established(self) -> bool: ...

    @property
    def error(self) -> str | None:
        """Set when the forwarder failed for good: the mesh connection must close."""
        ...

    def confirm(self, now: float) -> None: ...

    def control_message(self, tag: int, payload: bytes, now: float) -> None: ...

    def take_control_messages(self) -> list[tuple[int, bytes]]: ...

    def peer_heard(self, now: float) -> None:
        """The mesh connection delivered a message from the peer: it is alive and being
        served, so an acknowledgement missing meanwhile is the path's fault."""
        ...

    def tick(self, now: float) -> float:
        """Run timers; return when to be called again."""
        ...

    def attrs(self) -> dict[str, Any]: ...

    def stop(self) -> None: ...


class Overlay(Protocol):
    def add_features(self, features: dict[str, str]) -> None: ...

    def prepare_connection(self, params: OverlayParams) -> OverlayConnection: ...

    def diagnostics(self) -> dict[str, Any]: ...


class NullOverlayConnection(msgspec.Struct):
    """No data plane: established as soon as the mesh confirms the connection."""

    established: bool = False
    error: str | None = None
    _pending: list[tuple[int, bytes]] = msgspec.field(default_factory=list)

    def confirm(self, now: float) -> None:
        self.established = True

    def control_message(self, tag: int, payload: bytes, now: float) -> None:
        return None

    def take_control_messages(self) -> list[tuple[int, bytes]]:
        return []

    def peer_heard(self, now: float) -> None:
        return None

    def tick(self, now: float) -> float:
        return float("inf")

    def attrs(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        return None


class NullOverlay:
    """mesh's NullOverlay: advertises nothing, carries nothing."""

    def add_features(self, features: dict[str, str]) -> None:
        return None

    def prepare_connection(self, params: OverlayParams) -> OverlayConnection:
        return NullOverlayConnection()

    def diagnostics(self) -> dict[str, Any]:
        return {}
