"""Connection lifecycle of the mesh router: the handshake, registration, duplicate
resolution, overlay establishment and termination (mesh connection.go and
local_peer.go). Owns no table of its own: it works on the connection table and tells
the router what happened through :class:`LifecycleHooks`."""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Callable

import msgspec

from weavenet.core.effects import Close, Effect, Send
from weavenet.core.errors import RemoteProtocolError
from weavenet.core.mesh.addresses import host_of
from weavenet.core.mesh.config import RouterConfig
from weavenet.core.mesh.conn import HEADER_TIMEOUT, HEARTBEAT_INTERVAL, MeshConn
from weavenet.core.mesh.connection_maker import ConnectionMaker
from weavenet.core.mesh.connections import ConnectionTable
from weavenet.core.mesh.features import (
    PeerNameCollision,
    SelfConnection,
    build_features,
    parse_features,
)
from weavenet.core.mesh.handshake import Handshake, HandshakeConfig
from weavenet.core.mesh.overlay import Overlay, OverlayParams
from weavenet.core.mesh.peers import Peer, Peers
from weavenet.core.mesh.routes import RouteCache
from weavenet.core.peername import format_peer_name

log = logging.getLogger("weavenet.mesh")


class ConnectionRefused(RemoteProtocolError):
    """The handshake worked but the connection must not be kept."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class LifecycleHooks(msgspec.Struct, frozen=True):
    """What the lifecycle tells the router (callbacks, so that it needs no router)."""

    send_all_gossip_down: Callable[[MeshConn, float], None]  # a new or restarted peer
    topology_update: Callable[[set[int], float], None]  # our entry changed (and theirs)
    overlay_wakeup: Callable[[MeshConn], None]  # conn.overlay_wakeup was (re)set
    emit: Callable[[Effect], None]


class LifecycleParts(msgspec.Struct, frozen=True):
    """The router state the lifecycle works on."""

    config: RouterConfig
    uid: int
    rng: random.Random
    peers: Peers
    maker: ConnectionMaker
    overlay: Overlay
    table: ConnectionTable
    routes: RouteCache


class ConnectionLifecycle:
    def __init__(self, parts: LifecycleParts, hooks: LifecycleHooks) -> None:
        self._p = parts
        self._hooks = hooks

    def open(
        self, conn_id: int, outbound: bool, local: str, remote: str, target: str | None, now: float
    ) -> None:
        """A socket is connected: start our side of the handshake."""
        p = self._p
        our_conn_id = p.rng.getrandbits(64)
        features = build_features(
            p.config.name,
            p.config.nickname,
            p.uid,
            our_conn_id,
            p.peers.ourself.short_id,
            self.trusts(remote),
            None,
            topology_to_all=True,  # router._send_topology_update
        )
        p.overlay.add_features(features)
        handshake = Handshake(
            HandshakeConfig(features=features, outbound=outbound, password=p.config.password)
        )
        conn = MeshConn(
            conn_id, outbound, local, remote, target, our_conn_id, handshake, now + HEADER_TIMEOUT
        )
        conn.out += conn.handshake.data_to_send()
        p.table.add(conn)
        if not outbound:
            log.info("%s connection accepted", conn.describe())

    def trusts(self, remote: str) -> bool:
        try:
            ip = ipaddress.ip_address(host_of(remote))
        except ValueError:
            return False
        return any(ip in net for net in self._p.config.trusted_subnets)

    def handshake_completed(self, conn: MeshConn, now: float) -> list[bytes]:
        """Register the connection; return message bodies that arrived with the intro."""
        p = self._p
        result = conn.handshake.result
        try:
            remote = parse_features(result.remote_features, p.config.name, p.uid)
        except (SelfConnection, PeerNameCollision) as exc:
            self.terminate(conn, str(exc), now, retry=False, counted=False)
            return []
        conn.remote, conn.remote_nickname = remote, remote.nickname
        conn.codec = result.codec
        conn.uid = conn.conn_id ^ remote.conn_id
        conn.untrusted = not (self.trusts(conn.remote_addr) and remote.trusted)
        log.info("%s: connection ready; using protocol version %d", conn.describe(), result.version)
        try:
            self._register(conn, now)
        except ConnectionRefused as exc:
            self.terminate(conn, str(exc), now, retry=exc.retry)
            return []
        return list(result.leftover)

    def _register(self, conn: MeshConn, now: float) -> None:
        p, remote = self._p, conn.remote
        assert remote is not None
        discovered = conn.outbound and conn.target not in p.maker.direct.values()
        if discovered and remote.name not in p.peers:
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
        known = p.peers.get(remote.name)
        gossiped = known is not None and known.version > 0  # an entry, not a stub
        peer = p.peers.fetch_with_default(candidate)
        conn.holds_ref = True
        restarted = peer.uid != remote.uid
        self._resolve_duplicate(conn, now)
        limit = p.config.conn_limit
        if limit and len(p.table.by_peer) >= limit:
            raise ConnectionRefused(f"Connection limit reached ({limit})")
        self._add_connection(conn, restarted, now, announce_remote=restarted or not gossiped)

    def _resolve_duplicate(self, conn: MeshConn, now: float) -> None:
        """Two connections to one peer: both ends keep the one with the lower UID."""
        dup = self._p.table.to_peer(conn.remote_name)
        if dup is None:
            return
        config = self._p.config
        reason = (
            f"Multiple connections to {conn.peer_label()} added to "
            f"{format_peer_name(config.name)}({config.nickname})"
        )
        if conn.uid <= dup.uid:
            self.terminate(dup, reason, now)
        if dup.uid <= conn.uid:
            raise ConnectionRefused(reason)

    def _add_connection(
        self, conn: MeshConn, restarted: bool, now: float, announce_remote: bool
    ) -> None:
        """Register ``conn``. Our next topology update carries the remote's entry only if
        our neighbours may not have it (Go always adds it): a peer we learnt by gossip
        reached them the same way, and in a forming mesh these entries were ~95% of what
        our own updates carried."""
        p = self._p
        # only for the log line: Go asks routes recalculated in the background, and
        # recomputing them here (each added connection invalidates them) was ~3% of a
        # router's CPU in a 100-router chain; the last table's data-plane search too (a
        # new table for each added connection), so it is asked this one question only
        last = p.routes.last()
        connected_before = last is not None and last.reaches(conn.remote_name)
        full_state = restarted or self.needs_full_state(conn.remote_name, now)
        p.table.register(conn)
        conn.next_heartbeat = now + HEARTBEAT_INTERVAL
        p.peers.add_local_connection(conn.remote_name, conn.remote_addr, conn.outbound, False)
        p.routes.invalidate()  # a new neighbour: gossip relayed from now on must reach it
        if conn.target is not None:
            p.maker.connection_added(conn.target, conn.outbound)
        if restarted:
            log.info("%s: connection added (restarted peer)", conn.describe())
        elif connected_before:
            log.info("%s: connection added", conn.describe())
        else:
            log.info("%s: connection added (new peer)", conn.describe())
        if full_state:
            self._hooks.send_all_gossip_down(conn, now)
        self._hooks.topology_update({conn.remote_name} if announce_remote else set(), now)
        self._start_overlay(conn, now)

    def needs_full_state(self, remote: int, now: float) -> bool:
        """Whether a new connection to ``remote`` (not a restarted peer) gets every
        channel's state. Go sends it unless the peer was routed (over established,
        symmetric connections), i.e. until the overlay to it is up: in a chain start,
        most connections, and at 100 peers those full states were over half of all
        topology bytes. A peer that gossip already reaches (over any announced
        connection, as gossip is routed) has our state but for what is in flight,
        and the gossip brings that. A neighbour's entry listing it is such a route, the
        usual one (it is how we learnt of the peer) and cheap to see; else the routes
        are asked with all we know now: a route is often news of the last moment, and
        each full state sent for want of it is the whole table (at 100 peers, asked of
        routes up to ROUTES_RECALC_DELAY old, three times as many)."""
        if self._listed_by_a_neighbour(remote):
            return False
        return self._p.routes.fresh().lookup_all(remote) is None

    def _listed_by_a_neighbour(self, remote: int) -> bool:
        """A peer we are connected to lists ``remote``: gossip reaches it through them."""
        peers = self._p.peers
        for name in self._p.table.by_peer:
            entry = peers.get(name)
            if entry is not None and remote in entry.connections:
                return True
        return False

    def _start_overlay(self, conn: MeshConn, now: float) -> None:
        remote = conn.remote
        assert remote is not None
        params = OverlayParams(
            remote_name=remote.name,
            local_name=self._p.config.name,
            outbound=conn.outbound,
            conn_uid=conn.uid,
            local_addr=conn.local_addr,
            remote_addr=conn.remote_addr,
            session_key=conn.handshake.result.session_key if conn.untrusted else None,
            remote_overlays=tuple(remote.overlays) if remote.overlays is not None else None,
        )
        conn.overlay = self._p.overlay.prepare_connection(params)
        conn.overlay.confirm(now)
        self.tick_overlay(conn, now)

    def tick_overlay(self, conn: MeshConn, now: float) -> None:
        """Run the overlay's timers, then carry what it has to say."""
        if conn.overlay is None:
            return
        conn.overlay_wakeup = conn.overlay.tick(now)
        self._hooks.overlay_wakeup(conn)
        self.pump_overlay(conn, now)

    def pump_overlay(self, conn: MeshConn, now: float) -> None:
        """Carry the overlay's control messages and notice establishment or failure."""
        overlay = conn.overlay
        if overlay is None:
            return
        for tag, payload in overlay.take_control_messages():
            conn.send(bytes([tag]) + payload)
        if overlay.error is not None:
            self.terminate(conn, overlay.error, now)
        elif overlay.established and not conn.established:
            conn.established = True
            self._p.peers.set_local_connection_established(conn.remote_name)
            log.info("%s: connection fully established", conn.describe())
            self._hooks.topology_update(set(), now)  # our entry only, as Go

    def terminate(
        self,
        conn: MeshConn,
        reason: str,
        now: float,
        retry: bool = True,
        counted: bool = True,
    ) -> None:
        """Forget a connection at once and ask the shell to close its socket."""
        p = self._p
        present, registered = p.table.remove(conn)
        if not present:
            return
        stage = "" if conn.codec is not None else " during handshake"
        log.info("%s connection shutting down due to error%s: %s", conn.describe(), stage, reason)
        if registered:
            p.peers.delete_local_connection(conn.remote_name)
            p.routes.invalidate()  # no route may lead through a connection we lost
            log.info("%s: connection deleted", conn.describe())
            self._hooks.topology_update(set(), now)  # our entry only, as Go
        if conn.holds_ref:
            p.peers.release_ref(conn.remote_name)
        if conn.overlay is not None:
            conn.overlay.stop()
        address = conn.target if conn.outbound and conn.target else conn.remote_addr
        p.maker.connection_terminated(address, reason, now, retry=retry, counted=counted)
        if conn.out:  # flush what we had queued, then close
            self._hooks.emit(Send(conn.id, conn.take_output()))
        self._hooks.emit(Close(conn.id, reason))
