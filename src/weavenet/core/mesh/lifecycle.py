"""Connection lifecycle of the mesh router: registration after the handshake,
duplicate resolution, overlay establishment and termination (mesh connection.go and
local_peer.go). Functions of :class:`weavenet.core.mesh.router.Router`'s state."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from weavenet.core.effects import Close, Send
from weavenet.core.errors import RemoteProtocolError
from weavenet.core.mesh.conn import HEARTBEAT_INTERVAL, MeshConn
from weavenet.core.mesh.handshake import PeerNameCollision, SelfConnection, parse_features
from weavenet.core.mesh.overlay import OverlayParams
from weavenet.core.mesh.peers import Peer
from weavenet.core.peername import format_peer_name

if TYPE_CHECKING:
    from weavenet.core.mesh.router import Router

log = logging.getLogger("weavenet.mesh")


class ConnectionRefused(RemoteProtocolError):
    """The handshake worked but the connection must not be kept."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def handshake_completed(router: Router, conn: MeshConn, now: float) -> list[bytes]:
    """Register the connection; return message bodies that arrived with the intro."""
    result = conn.handshake.result
    try:
        remote = parse_features(result.remote_features, router.name, router.uid)
    except (SelfConnection, PeerNameCollision) as exc:
        terminate(router, conn, str(exc), now, retry=False, counted=False)
        return []
    conn.remote, conn.remote_nickname = remote, remote.nickname
    conn.codec = result.codec
    conn.uid = conn.conn_id ^ remote.conn_id
    conn.untrusted = not (router._trusts(conn.remote_addr) and remote.trusted)
    log.info("%s: connection ready; using protocol version %d", conn.describe(), result.version)
    try:
        _register(router, conn, now)
    except ConnectionRefused as exc:
        terminate(router, conn, str(exc), now, retry=exc.retry)
        return []
    return list(result.leftover)


def _register(router: Router, conn: MeshConn, now: float) -> None:
    remote = conn.remote
    assert remote is not None
    discovered = conn.outbound and conn.target not in router.maker.direct.values()
    if discovered and remote.name not in router.peers:
        raise ConnectionRefused(f"Found unknown remote name: {format_peer_name(remote.name)}")
    candidate = Peer(
        remote.name,
        remote.nickname,
        remote.uid,
        0,
        remote.short_id or 0,
        remote.short_id is not None,
        {},
    )
    peer = router.peers.fetch_with_default(candidate)
    conn.holds_ref = True
    restarted = peer.uid != remote.uid
    _resolve_duplicate(router, conn)
    if router.config.conn_limit and len(router.by_peer) >= router.config.conn_limit:
        raise ConnectionRefused(f"Connection limit reached ({router.config.conn_limit})")
    _add_connection(router, conn, restarted, now)


def _resolve_duplicate(router: Router, conn: MeshConn) -> None:
    """Two connections to one peer: both ends keep the one with the lower UID."""
    dup = router.by_peer.get(conn.remote_name)
    if dup is None:
        return
    reason = (
        f"Multiple connections to {conn.peer_label()} added to "
        f"{format_peer_name(router.name)}({router.config.nickname})"
    )
    if conn.uid <= dup.uid:
        terminate(router, dup, reason, router._now)
    if dup.uid <= conn.uid:
        raise ConnectionRefused(reason)


def _add_connection(router: Router, conn: MeshConn, restarted: bool, now: float) -> None:
    connected_before = router.routes.lookup(conn.remote_name) is not None
    router.by_peer[conn.remote_name] = conn
    conn.registered = True
    conn.next_heartbeat = now + HEARTBEAT_INTERVAL
    router.peers.add_local_connection(conn.remote_name, conn.remote_addr, conn.outbound, False)
    if conn.target is not None:
        router.maker.connection_added(conn.target, conn.outbound)
    if restarted:
        log.info("%s: connection added (restarted peer)", conn.describe())
    elif connected_before:
        log.info("%s: connection added", conn.describe())
    else:
        log.info("%s: connection added (new peer)", conn.describe())
    if restarted or not connected_before:
        router.send_all_gossip_down(conn, now)
    router.schedule_topology_update({conn.remote_name}, now)
    _start_overlay(router, conn, now)


def _start_overlay(router: Router, conn: MeshConn, now: float) -> None:
    remote = conn.remote
    assert remote is not None
    params = OverlayParams(
        remote_name=remote.name,
        local_name=router.name,
        outbound=conn.outbound,
        conn_uid=conn.uid,
        local_addr=conn.local_addr,
        remote_addr=conn.remote_addr,
        session_key=conn.handshake.result.session_key if conn.untrusted else None,
        remote_overlays=tuple(remote.overlays) if remote.overlays is not None else None,
    )
    conn.overlay = router.overlay.prepare_connection(params)
    conn.overlay.confirm(now)
    conn.overlay_wakeup = conn.overlay.tick(now)
    router.note_wakeup(conn.overlay_wakeup)
    pump_overlay(router, conn, now)


def pump_overlay(router: Router, conn: MeshConn, now: float) -> None:
    """Carry the overlay's control messages and notice establishment or failure."""
    overlay = conn.overlay
    if overlay is None:
        return
    for tag, payload in overlay.take_control_messages():
        conn.send(bytes([tag]) + payload)
    if overlay.error is not None:
        terminate(router, conn, overlay.error, now)
    elif overlay.established and not conn.established:
        conn.established = True
        router.peers.set_local_connection_established(conn.remote_name)
        log.info("%s: connection fully established", conn.describe())
        router.schedule_topology_update({conn.remote_name}, now)


def terminate(
    router: Router,
    conn: MeshConn,
    reason: str,
    now: float,
    retry: bool = True,
    counted: bool = True,
) -> None:
    """Forget a connection at once and ask the shell to close its socket."""
    if router.conns.pop(conn.id, None) is None:
        return
    stage = "" if conn.codec is not None else " during handshake"
    log.info("%s connection shutting down due to error%s: %s", conn.describe(), stage, reason)
    if conn.registered and router.by_peer.get(conn.remote_name) is conn:
        del router.by_peer[conn.remote_name]
        router.peers.delete_local_connection(conn.remote_name)
        log.info("%s: connection deleted", conn.describe())
        router.schedule_topology_update({conn.remote_name}, now)
    if conn.holds_ref:
        router.peers.release_ref(conn.remote_name)
    if conn.overlay is not None:
        conn.overlay.stop()
    address = conn.target if conn.outbound and conn.target else conn.remote_addr
    router.maker.connection_terminated(address, reason, now, retry=retry, counted=counted)
    if conn.out:  # flush what we had queued, then close
        router.effects.append(Send(conn.id, conn.take_output()))
    router.effects.append(Close(conn.id, reason))
