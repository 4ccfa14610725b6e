"""The mesh router core: connections, gossip, topology and targets, with no I/O.

The shell feeds it socket events with ``now`` and executes the effects it returns
(:mod:`weavenet.core.effects`). One event loop owns it; nothing here locks.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from weavenet.core.effects import Dial, Effect, PersistTargets
from weavenet.core.errors import RemoteProtocolError
from weavenet.core.mesh import gossip_routing, lifecycle
from weavenet.core.mesh.addresses import host_of, split_host_port
from weavenet.core.mesh.conn import HEADER_TIMEOUT, HEARTBEAT_INTERVAL, MeshConn
from weavenet.core.mesh.connection_maker import ConnectionMaker, OurConnection
from weavenet.core.mesh.gossip import (
    GOSSIP_INTERVAL,
    Gossip,
    GossipData,
    Gossiper,
    SurrogateGossiper,
)
from weavenet.core.mesh.handshake import Handshake, HandshakeConfig, build_features
from weavenet.core.mesh.overlay import NullOverlay, Overlay
from weavenet.core.mesh.peers import Peer, Peers
from weavenet.core.mesh.protocol import GossipMessage, Tag, encode_gossip
from weavenet.core.mesh.routes import Routes
from weavenet.core.mesh.topology_gossip import (
    TOPOLOGY_CHANNEL,
    TopologyGossipData,
    TopologyGossiper,
)
from weavenet.core.peername import format_peer_name

log = logging.getLogger("weavenet.mesh")

# Our own topology changes are gossiped after this delay, coalesced (mesh uses 1 s). A
# joining peer gets the full state at once down its new connection either way; the longer
# window halves the versions a busy mesh re-decodes (see BENCHMARKS.md, bench-mesh).
TOPOLOGY_UPDATE_DELAY = 2.0
GC_DELAY = 1.0
ACCEPT_TOKENS, ACCEPT_TOKEN_DELAY = 100, 0.1  # mesh router.go: a 100-token bucket, 10/s
PLAN_DELAY = 0.25  # coalesce connection planning after topology news
ROUTES_RECALC_DELAY = 0.2
SWEEP_INTERVAL = 1.0  # granularity of connection deadlines and heartbeats


@dataclass(frozen=True)
class RouterConfig:
    name: int
    nickname: str
    port: int = 6783
    password: bytes | None = None
    discovery: bool = True
    conn_limit: int = 200
    trusted_subnets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@dataclass
class _Timers:
    topology_update_at: float = float("inf")
    gc_at: float = float("inf")
    gossip_at: float = 0.0
    accept_tokens: float = ACCEPT_TOKENS
    accept_refill_at: float = 0.0
    plan_at: float = float("inf")
    sweep_at: float = 0.0
    conn_wakeup: float = float("inf")
    pending_names: set[int] = field(default_factory=set)


class Router:
    """Mesh state for one peer. Entry points end by flushing output into effects."""

    def __init__(
        self, config: RouterConfig, rng: random.Random, now: float, overlay: Overlay | None = None
    ) -> None:
        self.config = config
        self.rng = rng
        self.overlay: Overlay = overlay or NullOverlay()
        self.uid = rng.getrandbits(64) or 1
        ourself = Peer(config.name, config.nickname, self.uid, 1, rng.randrange(4096), True, {})
        self.peers = Peers(ourself, rng)
        self.maker = ConnectionMaker(config.port, config.discovery, rng, config.conn_limit)
        self.conns: dict[int, MeshConn] = {}
        self.by_peer: dict[int, MeshConn] = {}
        self.timers = _Timers(gossip_at=now + GOSSIP_INTERVAL, accept_refill_at=now)
        self.effects: list[Effect] = []
        self._touched: set[int] = set()
        self._peer_gone: list[Callable[[int, float], None]] = []
        self._routes: Routes | None = None
        self._routes_at = now
        self._routes_dirty = False
        self.channels: dict[str, Gossiper] = {
            TOPOLOGY_CHANNEL: TopologyGossiper(self.peers, self._topology_changed)
        }

    @property
    def name(self) -> int:
        return self.config.name

    @property
    def routes(self) -> Routes:
        """Routes for forwarding gossip. After topology news they are recomputed at most
        every ROUTES_RECALC_DELAY (as mesh defers recalculation), so a burst of updates
        costs one computation; local connection changes take effect at once."""
        due = self._routes_dirty and self._now >= self._routes_at + ROUTES_RECALC_DELAY
        if self._routes is None or due:
            self._routes = Routes.compute(self.peers)
            self._routes_at, self._routes_dirty = self._now, False
        return self._routes

    def fresh_routes(self) -> Routes:
        if self._routes_dirty:
            self._routes = None
        return self.routes

    # ---- control -------------------------------------------------------------------
    def connect(self, peers: list[str], replace: bool, now: float) -> list[str]:
        self._now = now
        errors = self.maker.connect(peers, replace)
        if not errors:
            self.effects.append(PersistTargets(tuple(self.maker.direct_peers())))
            self._plan_connections(now)
        return errors

    def forget(self, peers: list[str], now: float) -> None:
        self._now = now
        self.maker.forget(peers)
        self.effects.append(PersistTargets(tuple(self.maker.direct_peers())))
        self._plan_connections(now)

    def take_effects(self) -> list[Effect]:
        gossip_routing.flush(
            self,
        )
        effects, self.effects = self.effects, []
        return effects

    # ---- socket events -------------------------------------------------------------
    def accept_delay(self, now: float) -> float:
        """Seconds to hold a newly accepted connection before serving it.

        A token bucket as in mesh: bursts of 100 are served at once, then 10 a second.
        Connections beyond that wait their turn rather than being reset, so dialers do
        not back off for nothing."""
        t = self.timers
        refill = (now - t.accept_refill_at) / ACCEPT_TOKEN_DELAY
        t.accept_tokens = min(ACCEPT_TOKENS, t.accept_tokens + refill) - 1
        t.accept_refill_at = now
        return max(0.0, -t.accept_tokens * ACCEPT_TOKEN_DELAY)

    def connection_opened(
        self, conn_id: int, outbound: bool, local: str, remote: str, target: str | None, now: float
    ) -> None:
        self._now = now
        our_conn_id = self.rng.getrandbits(64)
        features = build_features(
            self.name,
            self.config.nickname,
            self.uid,
            our_conn_id,
            self.peers.ourself.short_id,
            self._trusts(remote),
            None,
        )
        self.overlay.add_features(features)
        config = HandshakeConfig(
            features=features, outbound=outbound, password=self.config.password
        )
        conn = MeshConn(
            conn_id,
            outbound,
            local,
            remote,
            target,
            our_conn_id,
            Handshake(config),
            now + HEADER_TIMEOUT,
            touched=self._touched,
        )
        conn.out += conn.handshake.data_to_send()
        self._touched.add(conn_id)
        self.conns[conn_id] = conn
        if not outbound:
            log.info("%s connection accepted", conn.describe())

    def dial_failed(self, address: str, error: str, now: float) -> None:
        self._now = now
        log.info("->[%s] error during connection attempt: %s", address, error)
        self.maker.dial_failed(address, error, now)

    def data_received(self, conn_id: int, data: bytes, now: float) -> None:
        self._now = now
        conn = self.conns.get(conn_id)
        if conn is None:
            return
        try:
            bodies = conn.receive(data, now)
            if conn.handshake_done:
                bodies = lifecycle.handshake_completed(self, conn, now)
            for body in bodies:
                if self.conns.get(conn_id) is not conn:
                    return
                gossip_routing.handle_message(self, conn, body, now)
        except RemoteProtocolError as exc:
            lifecycle.terminate(self, conn, str(exc), now)

    def connection_closed(self, conn_id: int, reason: str, now: float) -> None:
        self._now = now
        conn = self.conns.get(conn_id)
        if conn is not None:
            lifecycle.terminate(self, conn, reason, now)

    def set_writable(self, conn_id: int, writable: bool) -> None:
        conn = self.conns.get(conn_id)
        if conn is not None:
            conn.writable = writable

    # ---- gossip channels -----------------------------------------------------------
    def new_gossip(self, channel: str, gossiper: Gossiper) -> Gossip:
        """Give ``channel`` to ``gossiper`` (mesh Router.NewGossip); returns the handle
        its owner sends with. A surrogate standing in for the channel is replaced."""
        current = self.channels.get(channel)
        if current is not None and not isinstance(current, SurrogateGossiper):
            raise ValueError(f"[gossip] duplicate channel {channel}: it already has an owner")
        self.channels[channel] = gossiper
        return gossip_routing.GossipHandle(self, channel)

    def known_peers(self) -> dict[int, str]:
        """Name -> nickname of every peer in the topology, us included."""
        return {peer.name: peer.nickname for peer in self.peers}

    def is_reachable(self, name: int) -> bool:
        """Us, or a peer we have a unicast route to."""
        return name == self.name or self.fresh_routes().lookup(name) is not None

    def on_peer_gone(self, callback: Callable[[int, float], None]) -> None:
        """Call ``callback(name, now)`` whenever a peer is garbage-collected."""
        self._peer_gone.append(callback)

    def gossip_unicast(self, channel: str, dst: int, data: bytes, now: float) -> bool:
        """Send channel data to one peer along the unicast-all routes."""
        self._now = now
        body = bytes([Tag.GOSSIP_UNICAST]) + encode_gossip(
            Tag.GOSSIP_UNICAST, GossipMessage(channel, self.name, dst, data)
        )
        hop = self.fresh_routes().lookup_all(dst)
        conn = self.by_peer.get(hop) if hop else None
        if conn is None:
            log.info("[gossip] %s: unknown relay destination: %s", channel, format_peer_name(dst))
            return False
        conn.send(body)
        return True

    def gossip_broadcast(self, channel: str, data: GossipData, now: float) -> None:
        """Send channel data to every peer along our broadcast-all tree."""
        self._now = now
        for conn in gossip_routing.connections_to(
            self, self.fresh_routes().broadcast_all(self.name)
        ):
            conn.add_broadcast(channel, self.name, data)

    def gossip_neighbour_subset(self, channel: str, data: GossipData, now: float) -> None:
        """Send channel data as gossip to a random subset of our neighbours."""
        self._now = now
        for conn in gossip_routing.connections_to(
            self, self.fresh_routes().random_neighbours(self.name, self.rng)
        ):
            conn.add_gossip(channel, data)

    def send_all_gossip_down(self, conn: MeshConn, now: float) -> None:
        for channel, gossiper in list(self.channels.items()):
            data = gossip_routing.full_state(channel, gossiper, now)
            if data is not None:
                conn.add_gossip(channel, data)

    # ---- topology ------------------------------------------------------------------
    def _topology_changed(self, now: float) -> None:
        self._routes_dirty = True
        if self.peers.check_short_id_collision():
            self.schedule_topology_update(set(), now)
        self.timers.gc_at = min(self.timers.gc_at, now + GC_DELAY)
        self.timers.plan_at = min(self.timers.plan_at, now + PLAN_DELAY)

    def schedule_topology_update(self, names: set[int], now: float) -> None:
        """Our own entry changed: gossip it (and ``names``) after the coalescing delay."""
        self._routes = None
        self.timers.pending_names |= names | {self.name}
        self.timers.topology_update_at = min(
            self.timers.topology_update_at, now + TOPOLOGY_UPDATE_DELAY
        )
        self.timers.gc_at = min(self.timers.gc_at, now + GC_DELAY)

    def _send_topology_update(self) -> None:
        names, self.timers.pending_names = self.timers.pending_names, set()
        self.timers.topology_update_at = float("inf")
        data = TopologyGossipData(self.peers, names)
        for conn in gossip_routing.connections_to(
            self, self.routes.random_neighbours(self.name, self.rng)
        ):
            conn.add_gossip(TOPOLOGY_CHANNEL, data)

    def _garbage_collect(self, now: float) -> None:
        self.timers.gc_at = float("inf")
        for peer in self.peers.garbage_collect():
            self._routes = None
            log.info("Removed unreachable peer %s(%s)", format_peer_name(peer.name), peer.nickname)
            for callback in self._peer_gone:  # e.g. the datapath forgets the peer's MACs
                callback(peer.name, now)

    def _plan_connections(self, now: float) -> None:
        self.timers.plan_at = float("inf")
        ours = [
            OurConnection(c.remote_name, c.remote_addr, c.outbound) for c in self.by_peer.values()
        ]
        # only connections to peers we are not connected to matter for discovery; the set
        # folds the many reports of one connection into one candidate
        us, connected = self.name, self.by_peer
        known = {
            (remote, summary.remote_tcp_addr, summary.outbound)
            for peer in self.peers.unordered()
            if peer.name != us
            for remote, summary in peer.connections.items()
            if remote != us and remote not in connected
        }
        for address in self.maker.plan(now, ours, known, self.name):
            host, port = split_host_port(address, self.config.port)
            log.info("->[%s] attempting connection", address)
            self.effects.append(Dial(address, host, port))

    # ---- time ----------------------------------------------------------------------
    _now: float = 0.0

    def tick(self, now: float) -> None:
        self._now = now
        if now >= self.timers.sweep_at:
            self.timers.sweep_at = now + SWEEP_INTERVAL
            self._sweep_connections(now)
        elif now >= self.timers.conn_wakeup:
            self._wake_connections(now)
        if now >= self.timers.topology_update_at:
            self._send_topology_update()
        if now >= self.timers.gc_at:
            self._garbage_collect(now)
            self._plan_connections(now)
        if now >= self.timers.plan_at:
            self._plan_connections(now)
        if now >= self.timers.gossip_at:
            self.timers.gossip_at = now + GOSSIP_INTERVAL
            gossip_routing.periodic_gossip(self, now)
        if now >= self.maker.next_wakeup():
            self._plan_connections(now)

    def _sweep_connections(self, now: float) -> None:
        """Coarse timers, checked once a second: read deadlines and heartbeats."""
        for conn in list(self.conns.values()):
            if now >= conn.read_deadline:
                reason = "read timeout: no message from the peer for too long"
                lifecycle.terminate(self, conn, reason, now)
            elif conn.registered and now >= conn.next_heartbeat:
                conn.send(bytes([Tag.HEARTBEAT]))
                conn.next_heartbeat = now + HEARTBEAT_INTERVAL
        self._wake_connections(now)

    def _wake_connections(self, now: float) -> None:
        """Fine timers: overlay timers and batched gossip that is due."""
        self.timers.conn_wakeup = float("inf")
        for conn in list(self.conns.values()):
            if conn.overlay is not None and now >= conn.overlay_wakeup:
                conn.overlay_wakeup = conn.overlay.tick(now)
                lifecycle.pump_overlay(self, conn, now)
            if conn.pending:
                self._touched.add(conn.id)
            self.note_wakeup(conn.overlay_wakeup)

    def overlay_activity(self, names: set[int], now: float) -> None:
        """The datapath moved these peers' forwarders (a heartbeat, an MTU result):
        carry their control messages and notice establishment or failure."""
        self._now = now
        for name in names:
            conn = self.by_peer.get(name)
            if conn is not None and conn.overlay is not None:
                conn.overlay_wakeup = conn.overlay.tick(now)
                self.note_wakeup(conn.overlay_wakeup)
                lifecycle.pump_overlay(self, conn, now)

    def note_wakeup(self, when: float) -> None:
        self.timers.conn_wakeup = min(self.timers.conn_wakeup, when)

    def next_wakeup(self) -> float:
        t = self.timers
        return min(
            t.topology_update_at,
            t.gc_at,
            t.gossip_at,
            t.plan_at,
            t.sweep_at,
            t.conn_wakeup,
            self.maker.next_wakeup(),
        )

    # ---- output --------------------------------------------------------------------
    def _trusts(self, remote: str) -> bool:
        try:
            ip = ipaddress.ip_address(host_of(remote))
        except ValueError:
            return False
        return any(ip in net for net in self.config.trusted_subnets)
