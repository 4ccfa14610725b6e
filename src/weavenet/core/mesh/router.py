"""The mesh router core: connections, gossip, topology and targets, with no I/O.

The shell feeds it socket events with ``now`` and executes the effects it returns
(:mod:`weavenet.core.effects`). One event loop owns it; nothing here locks. Every entry
point takes ``now``: the router remembers no clock.

The router composes collaborators that own their state: the connection table
(:mod:`.connections`), the gossip channels (:mod:`.gossip_routing`) and the connection
lifecycle (:mod:`.lifecycle`). They get what they need passed in; none imports this
module.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import msgspec

from weavenet.core.effects import Dial, Effect, PersistTargets
from weavenet.core.errors import RemoteProtocolError
from weavenet.core.mesh.addresses import split_host_port
from weavenet.core.mesh.config import RouterConfig
from weavenet.core.mesh.conn import HEARTBEAT_INTERVAL, MeshConn
from weavenet.core.mesh.connection_maker import (
    ConnectionMaker,
    OurConnection,
    discovery_candidates,
)
from weavenet.core.mesh.connections import ConnectionTable
from weavenet.core.mesh.gossip import GOSSIP_INTERVAL, Gossip, Gossiper
from weavenet.core.mesh.gossip_routing import GOSSIP_TAGS, GossipRouter
from weavenet.core.mesh.lifecycle import ConnectionLifecycle, LifecycleHooks, LifecycleParts
from weavenet.core.mesh.overlay import NullOverlay, Overlay
from weavenet.core.mesh.peers import Peer, Peers
from weavenet.core.mesh.protocol import Tag
from weavenet.core.mesh.routes import RouteCache, Routes
from weavenet.core.mesh.topology_gossip import (
    TOPOLOGY_CHANNEL,
    TopologyGossipData,
    TopologyGossiper,
)
from weavenet.core.peername import format_peer_name

__all__ = ["Router", "RouterConfig"]

log = logging.getLogger("weavenet.mesh")

# Our own topology changes are published (Peers.publish) and gossiped at most once per
# TOPOLOGY_UPDATE_DELAY (mesh coalesces over 1 s), each TOPOLOGY_UPDATE_QUICK after the
# first change of a quiet spell: a lone change spreads at once, a router joining a big
# mesh (two changes per connection) shows the mesh one version of itself per interval
# (see BENCHMARKS.md, "Scale"). A router connected to every peer it knows, none of it
# forming, publishes QUICK after the change: that entry is the one a mesh converges on,
# and waiting out the interval for it was most of a 50-router chain's last seconds.
TOPOLOGY_UPDATE_DELAY = 2.0
TOPOLOGY_UPDATE_QUICK = 0.5
# While one of our connections is still forming (added, its overlay not established yet)
# another change is on its way: hold the next version until none is forming, or at most
# TOPOLOGY_FORMING_HOLD after the last one. A joining router then shows the mesh one
# version per few connections, not one per interval; its final entry still goes out
# QUICK after the last connection is established, and so does the first version with an
# established connection (until others see one, nobody has a route to us). At 100 routers
# every version of an entry reaches every router ~13 times, so versions are what a
# forming mesh costs (simulation, 100 routers: 16 s, not 8, 23% fewer updates; BENCHMARKS.md).
TOPOLOGY_FORMING_HOLD = 16.0
GC_DELAY = 1.0
# A peer found unreachable is collected only if it still is GC_GRACE later (Peers.
# garbage_collect holds it until then): while a mesh forms, peers are often unreachable
# for a moment, and each collected one came back as news, decoded and relayed again.
GC_GRACE = 5.0
ACCEPT_TOKENS, ACCEPT_TOKEN_DELAY = 100, 0.1  # mesh router.go: a 100-token bucket, 10/s
PLAN_DELAY = 0.25  # coalesce connection planning after topology news
SWEEP_INTERVAL = 1.0  # granularity of connection deadlines and heartbeats
_OVERLAY_TAGS = (Tag.RESERVED1, Tag.RESERVED2, Tag.RESERVED3, Tag.OVERLAY_CONTROL)


class _Timers(msgspec.Struct):
    topology_update_at: float = float("inf")
    published_at: float = float("-inf")
    gc_at: float = float("inf")
    gossip_at: float = 0.0
    accept_tokens: float = ACCEPT_TOKENS
    accept_refill_at: float = 0.0
    plan_at: float = float("inf")
    sweep_at: float = 0.0
    conn_wakeup: float = float("inf")
    pending_names: set[int] = msgspec.field(default_factory=set)


class Router:
    """Mesh state for one peer. The shell calls ``take_effects`` after every entry point."""

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
        self.timers = _Timers(gossip_at=now + GOSSIP_INTERVAL, accept_refill_at=now)
        self._effects: list[Effect] = []
        self._peer_gone: list[Callable[[int, float], None]] = []
        self._routes = RouteCache(self.peers)
        self._table = ConnectionTable(config.name)
        self._gossip = GossipRouter(config.name, rng, self._table, self._routes)
        self._gossip.new_gossip(TOPOLOGY_CHANNEL, TopologyGossiper(self.peers, self._news))
        parts = LifecycleParts(
            config, self.uid, rng, self.peers, self.maker, self.overlay, self._table, self._routes
        )
        hooks = LifecycleHooks(
            send_all_gossip_down=self._gossip.send_all_down,
            topology_update=self.schedule_topology_update,
            overlay_wakeup=self._overlay_wakeup,
            emit=self._effects.append,
        )
        self._lifecycle = ConnectionLifecycle(parts, hooks)

    @property
    def name(self) -> int:
        return self.config.name

    @property
    def conns(self) -> dict[int, MeshConn]:
        """Every connection by id (read-only use)."""
        return self._table.by_id

    @property
    def by_peer(self) -> dict[int, MeshConn]:
        """Registered connections by remote peer name (read-only use)."""
        return self._table.by_peer

    def routes(self, now: float) -> Routes:
        """Routes for forwarding, at most a moment behind topology news."""
        return self._routes.get(now)

    def fresh_routes(self) -> Routes:
        """Routes reflecting everything known now."""
        return self._routes.fresh()

    # ---- gossip channels -----------------------------------------------------------
    def new_gossip(self, channel: str, gossiper: Gossiper) -> Gossip:
        """Give ``channel`` to ``gossiper`` (mesh Router.NewGossip); returns the handle
        its owner sends with. ValueError if the channel already has an owner; a
        surrogate standing in for it is replaced."""
        return self._gossip.new_gossip(channel, gossiper)

    def known_peers(self) -> dict[int, str]:
        """Name -> nickname of every peer in the topology, us included."""
        return {peer.name: peer.nickname for peer in self.peers}

    def is_reachable(self, name: int) -> bool:
        """Us, or a peer we have a unicast route to."""
        return name == self.name or self._routes.fresh().lookup(name) is not None

    def on_peer_gone(self, callback: Callable[[int, float], None]) -> None:
        """Call ``callback(name, now)`` whenever a peer is garbage-collected."""
        self._peer_gone.append(callback)

    # ---- control -------------------------------------------------------------------
    def connect(self, peers: list[str], replace: bool, now: float) -> list[str]:
        errors = self.maker.connect(peers, replace)
        if not errors:
            self._effects.append(PersistTargets(tuple(self.maker.direct_peers())))
            self._plan_connections(now)
        return errors

    def forget(self, peers: list[str], now: float) -> None:
        self.maker.forget(peers)
        self._effects.append(PersistTargets(tuple(self.maker.direct_peers())))
        self._plan_connections(now)

    def take_effects(self, now: float) -> list[Effect]:
        """Everything to do now: pending gossip that is due becomes Sends."""
        self.note_wakeup(self._table.flush(now, self._effects.append))
        effects = list(self._effects)
        self._effects.clear()  # the same list: the lifecycle emits into it
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
        self._lifecycle.open(conn_id, outbound, local, remote, target, now)

    def dial_failed(self, address: str, error: str, now: float, refused: bool = False) -> None:
        """A dial failed; ``refused``: the host refused it (no router listening yet)."""
        log.info("->[%s] error during connection attempt: %s", address, error)
        self.maker.dial_failed(address, error, now, refused)

    def data_received(self, conn_id: int, data: bytes, now: float) -> None:
        conn = self._table.get(conn_id)
        if conn is None:
            return
        try:
            bodies = conn.receive(data, now)
            if conn.handshake_done:
                bodies = self._lifecycle.handshake_completed(conn, now)
            if bodies and conn.overlay is not None:
                conn.overlay.peer_heard(now)  # a missing ack is then the path's fault
            for body in bodies:
                if self._table.get(conn_id) is not conn:
                    return
                self._handle_message(conn, body, now)
        except RemoteProtocolError as exc:  # from the peer's bytes or a channel's owner
            self._lifecycle.terminate(conn, str(exc), now)

    def connection_closed(self, conn_id: int, reason: str, now: float) -> None:
        conn = self._table.get(conn_id)
        if conn is not None:
            self._lifecycle.terminate(conn, reason, now)

    def set_writable(self, conn_id: int, writable: bool) -> None:
        conn = self._table.get(conn_id)
        if conn is not None:
            conn.writable = writable
            if writable:  # gossip held while it was paused goes at the next flush
                self._table.mark(conn)

    def _handle_message(self, conn: MeshConn, body: bytes, now: float) -> None:
        if not body:
            return  # Go ignores blank messages
        tag = body[0]
        if tag == Tag.HEARTBEAT:
            return
        if tag in GOSSIP_TAGS:
            self._gossip.deliver(conn, tag, body, now)
        elif tag in _OVERLAY_TAGS:
            if conn.overlay is not None:
                conn.overlay.control_message(tag, body[1:], now)
                self._lifecycle.pump_overlay(conn, now)
        else:
            log.debug("%s ignoring unknown protocol tag %d", conn.describe(), tag)

    # ---- topology ------------------------------------------------------------------
    def _news(self, now: float) -> None:
        """Topology gossip taught us something."""
        self._routes.topology_changed()
        if self.peers.check_short_id_collision():
            self.schedule_topology_update(set(), now)
        self.timers.gc_at = min(self.timers.gc_at, now + GC_DELAY)
        self.timers.plan_at = min(self.timers.plan_at, now + PLAN_DELAY)

    def schedule_topology_update(self, names: set[int], now: float) -> None:
        """Our own entry changed: gossip it (and ``names``) after the coalescing delay.
        Our routes follow as after news from others: a connection established only
        adds routes over established connections (the data plane's), so routes a moment
        old are still usable; a connection added or lost changes our neighbours, and the
        lifecycle invalidates the routes then (gossip relayed by stale routes missed a
        new neighbour, which then lacked the news until the periodic round)."""
        self._routes.topology_changed()
        self.timers.pending_names |= names | {self.name}
        t = self.timers
        due = now + TOPOLOGY_UPDATE_QUICK
        if not self._settled():
            due = max(due, t.published_at + TOPOLOGY_UPDATE_DELAY)
        if now < t.published_at + TOPOLOGY_FORMING_HOLD and self._hold_while_forming():
            due = t.published_at + TOPOLOGY_FORMING_HOLD
        t.topology_update_at = min(t.topology_update_at, due)
        self.timers.gc_at = min(self.timers.gc_at, now + GC_DELAY)

    def _settled(self) -> bool:
        """Connected to every peer we know of, none of it still forming: the entry we
        would publish is likely our last for a while."""
        return len(self._table.by_peer) == len(self.peers) - 1 and not self.peers.forming()

    def _hold_while_forming(self) -> bool:
        """Hold our next version while connections form, unless it is the first to show
        an established one: until others see that, nobody has a route to us."""
        if not self.peers.forming():
            return False
        return self.peers.routable(published=True) or not self.peers.routable()

    def _send_topology_update(self, now: float) -> None:
        names, self.timers.pending_names = self.timers.pending_names, set()
        self.timers.topology_update_at = float("inf")
        self.timers.published_at = now
        self.peers.publish()
        # Our own entry to every connection, not to mesh's 2·log2 N random neighbours:
        # then each has it first-hand and, knowing that we do this (features
        # TOPOLOGY_TO_ALL), passes it on only to peers we are not connected to.
        ours = TopologyGossipData(self.peers, {self.name})
        for conn in self._table.by_peer.values():
            conn.add_gossip(TOPOLOGY_CHANNEL, ours)
        if others := names - {self.name}:
            data = TopologyGossipData(self.peers, others)
            neighbours = self._routes.get(now).random_neighbours(self.name, self.rng)
            for conn in self._table.connections_to(neighbours):
                conn.add_gossip(TOPOLOGY_CHANNEL, data)

    def _garbage_collect(self, now: float) -> None:
        self.timers.gc_at = float("inf")
        for peer in self.peers.garbage_collect(now, GC_GRACE):
            self._routes.invalidate()
            log.info("Removed unreachable peer %s(%s)", format_peer_name(peer.name), peer.nickname)
            for callback in self._peer_gone:  # e.g. the datapath forgets the peer's MACs
                callback(peer.name, now)
        self.timers.gc_at = min(self.timers.gc_at, self.peers.held_since() + GC_GRACE)

    def _plan_connections(self, now: float) -> None:
        self.timers.plan_at = float("inf")
        connected = self._table.by_peer
        ours = [OurConnection(c.remote_name, c.remote_addr, c.outbound) for c in connected.values()]
        known = discovery_candidates(
            self.peers.unordered(), self.peers.names(), self.name, connected.keys()
        )
        conns = self._table.by_id.values()
        calling = [c.remote_addr for c in conns if not c.outbound and not c.registered]
        for address in self.maker.plan(now, ours, known, self.name, calling):
            host, port = split_host_port(address, self.config.port)
            log.info("->[%s] attempting connection", address)
            self._effects.append(Dial(address, host, port))

    # ---- time ----------------------------------------------------------------------
    def tick(self, now: float) -> None:
        if now >= self.timers.sweep_at:
            self.timers.sweep_at = now + SWEEP_INTERVAL
            self._sweep_connections(now)
        elif now >= self.timers.conn_wakeup:
            self._wake_connections(now)
        if now >= self.timers.topology_update_at:
            self._send_topology_update(now)
        if now >= self.timers.gc_at:
            self._garbage_collect(now)
            self._plan_connections(now)
        if now >= self.timers.plan_at:
            self._plan_connections(now)
        if now >= self.timers.gossip_at:
            self.timers.gossip_at = now + GOSSIP_INTERVAL
            self._gossip.periodic(now)
        if now >= self.maker.next_wakeup():
            self._plan_connections(now)

    def _sweep_connections(self, now: float) -> None:
        """Coarse timers, checked once a second: read deadlines and heartbeats."""
        for conn in list(self._table.by_id.values()):
            if now >= conn.read_deadline:
                reason = "read timeout: no message from the peer for too long"
                self._lifecycle.terminate(conn, reason, now)
            elif conn.registered and now >= conn.next_heartbeat:
                conn.send(bytes([Tag.HEARTBEAT]))
                conn.next_heartbeat = now + HEARTBEAT_INTERVAL
        self._wake_connections(now)

    def _wake_connections(self, now: float) -> None:
        """Fine timers: overlay timers and batched gossip that is due."""
        self.timers.conn_wakeup = float("inf")
        for conn in self._table.take_due_overlays(now):
            self._lifecycle.tick_overlay(conn, now)
        self._table.release_held()
        self.note_wakeup(self._table.next_overlay_wakeup())

    def overlay_activity(self, names: set[int], now: float) -> None:
        """The datapath moved these peers' forwarders (a heartbeat, an MTU result):
        carry their control messages and notice establishment or failure."""
        for name in names:
            conn = self._table.to_peer(name)
            if conn is not None:
                self._lifecycle.tick_overlay(conn, now)

    def _overlay_wakeup(self, conn: MeshConn) -> None:
        self._table.overlay_due(conn)
        self.note_wakeup(conn.overlay_wakeup)

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
