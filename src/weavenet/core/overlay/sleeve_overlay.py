"""The sleeve overlay as the mesh sees it (weave's overlay_switch + sleeve, sleeve only).

It advertises ``Overlays: sleeve``, works out the control-message index a Go peer expects
(the position of "sleeve" in the common overlay list, in *our* registration order), and
keeps one :class:`SleeveConnection` per remote peer for the datapath to use.
"""

from __future__ import annotations

from typing import Any

import msgspec

from weavenet.core.mesh.addresses import host_of
from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.overlay.ready import ReadyList
from weavenet.core.overlay.sleeve import SleeveConnection

SLEEVE = "sleeve"
OUR_OVERLAYS = (SLEEVE,)  # when the sleeve runs alone; the overlay switch composes more


def common_overlays(ours: tuple[str, ...], theirs: tuple[str, ...]) -> list[str]:
    """The overlays both ends have, in our order (weave-wire §6.1)."""
    return [name for name in ours if name in theirs]


def _port_of(address: str) -> int:
    try:
        return int(address.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


class SleeveOverlay(msgspec.Struct):
    local: int
    connections: dict[int, SleeveConnection] = msgspec.field(default_factory=dict)
    name: str = SLEEVE
    # the connections with datagrams waiting
    ready: ReadyList[SleeveConnection] = msgspec.field(default_factory=ReadyList)

    def add_features(self, features: dict[str, str]) -> None:
        features["Overlays"] = " ".join(OUR_OVERLAYS)

    def prepare_connection(self, params: OverlayParams) -> SleeveConnection:
        """The sleeve alone as the mesh's overlay (the switch uses prepare_forwarder)."""
        index: int | None = None
        error = None
        if params.remote_overlays is not None:
            common = common_overlays(OUR_OVERLAYS, params.remote_overlays)
            if SLEEVE in common:
                index = common.index(SLEEVE)
            else:
                error = f"no common overlay: ours {list(OUR_OVERLAYS)}, theirs "
                error += str(list(params.remote_overlays))
        conn = self.prepare_forwarder(params, index)
        conn.error = error
        return conn

    def prepare_forwarder(self, params: OverlayParams, index: int | None) -> SleeveConnection:
        """Our forwarder at ``index`` in the common list (None: compat mode)."""
        remote_addr = None
        if params.outbound:  # the inbound side learns the address from heartbeats
            remote_addr = (host_of(params.remote_addr), _port_of(params.remote_addr))
        conn = SleeveConnection(
            self.local,
            params.remote_name,
            params.conn_uid,
            params.session_key is not None,
            remote_addr,
            index,
        )
        conn.outbound, conn.session_key = params.outbound, params.session_key
        conn.ready = self.ready
        old = self.connections.get(params.remote_name)
        if old is not None:
            old.stop()
        self.connections[params.remote_name] = conn
        return conn

    def sleeve_connection(self, peer: int) -> SleeveConnection | None:
        return self.connections.get(peer)

    def sleeve_connections(self) -> list[SleeveConnection]:
        return list(self.connections.values())

    def take_ready(self) -> list[SleeveConnection]:
        """The connections that queued datagrams since the last call."""
        return self.ready.drain()

    def forget(self, conn: SleeveConnection) -> None:
        if self.connections.get(conn.remote) is conn:
            del self.connections[conn.remote]

    def diagnostics(self) -> dict[str, Any]:
        return {SLEEVE: None}
