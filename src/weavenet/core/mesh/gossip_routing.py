"""Gossip channels and their routing (mesh gossip_channel.go and router.go
``handleGossip``): which channel owner gets a message, and which connections get what is
passed on. Owns the channel table; sends through the connection table."""

from __future__ import annotations

import logging
import random

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.mesh.conn import MeshConn
from weavenet.core.mesh.connections import ConnectionTable
from weavenet.core.mesh.gossip import Gossip, GossipData, Gossiper, SurrogateGossiper
from weavenet.core.mesh.protocol import GossipMessage, Tag, decode_gossip, encode_gossip
from weavenet.core.mesh.routes import RouteCache, Routes
from weavenet.core.mesh.topology_gossip import TopologyGossipData
from weavenet.core.peername import format_peer_name

log = logging.getLogger("weavenet.mesh")

GOSSIP_TAGS = {int(t): t for t in (Tag.GOSSIP, Tag.GOSSIP_UNICAST, Tag.GOSSIP_BROADCAST)}


class GossipRouter:
    """The gossip channels of one peer. Channels nobody owns get a surrogate that
    relays them, so mixed clusters still work; ``new_gossip`` replaces it."""

    def __init__(
        self, ourself: int, rng: random.Random, table: ConnectionTable, routes: RouteCache
    ) -> None:
        self._ourself = ourself
        self._rng = rng
        self._table = table
        self._routes = routes
        self._channels: dict[str, Gossiper] = {}

    def new_gossip(self, channel: str, gossiper: Gossiper) -> Gossip:
        current = self._channels.get(channel)
        if current is not None and not isinstance(current, SurrogateGossiper):
            raise ValueError(f"[gossip] duplicate channel {channel}: it already has an owner")
        self._channels[channel] = gossiper
        return GossipHandle(self, channel)

    def _channel(self, name: str) -> Gossiper:
        gossiper = self._channels.get(name)
        if gossiper is None:
            log.info("[gossip] created surrogate channel %s", name)
            gossiper = self._channels[name] = SurrogateGossiper()
        return gossiper

    # ---- receiving -----------------------------------------------------------------
    def deliver(self, conn: MeshConn, tag: int, body: bytes, now: float) -> None:
        """A gossip message arrived on ``conn``. The owner's RemoteProtocolError goes
        up to the caller, which closes ``conn``."""
        gossip_tag = GOSSIP_TAGS[tag]
        msg = decode_gossip(gossip_tag, body[1:])
        gossiper = self._channel(msg.channel)
        if gossip_tag == Tag.GOSSIP_UNICAST:
            if msg.dst == self._ourself:
                gossiper.on_gossip_unicast(msg.src, msg.data, now)
            elif not self._forward_unicast(msg.dst or 0, body, self._routes.get(now)):
                dst = format_peer_name(msg.dst or 0)
                log.info("dropping gossip unicast for unknown destination %s", dst)
        elif gossip_tag == Tag.GOSSIP_BROADCAST:
            data = gossiper.on_gossip_broadcast(msg.src, msg.data, now)
            if data is not None:
                # fresh, as mesh's relayBroadcast: a broadcast relayed along a tree from
                # before the latest news may miss the peers that news brought
                tree = self._routes.fresh().broadcast_all(msg.src)
                self._relay_broadcast(msg.channel, msg.src, data, tree)
        else:
            data = gossiper.on_gossip(msg.data, now)
            if isinstance(data, TopologyGossipData) and _sends_own_to_all(conn, msg.src):
                self._relay_first_hand(msg.channel, msg.src, data, now)
            elif data is not None:
                self._relay(msg.channel, msg.src, data, now)

    def _forward_unicast(self, dst: int, body: bytes, routes: Routes) -> bool:
        hop = routes.lookup_all(dst)
        conn = self._table.to_peer(hop) if hop else None
        if conn is None:
            return False
        conn.send(body)
        return True

    def _relay_broadcast(self, channel: str, src: int, data: GossipData, tree: list[int]) -> None:
        for conn in self._table.connections_to(tree):
            conn.add_broadcast(channel, src, data)

    def _relay_first_hand(
        self, channel: str, src: int, data: TopologyGossipData, now: float
    ) -> None:
        """News from ``src``, which sends each version of its own entry to every
        connection it has: the peers in that entry's connection list have it first-hand
        too, so of our random neighbours only the others get it; the rest of ``data`` goes
        to all of them, as usual. In a full mesh ``src``'s entry then goes to nobody,
        where mesh's relays bring every router each change from ~2·log2 N neighbours."""
        own, rest = data.split(src)
        entry = data.peers.get(src)
        told = entry.connections if entry is not None else {}
        for conn in self._table.connections_to(
            self._routes.get(now).random_neighbours(src, self._rng)
        ):
            if rest is not None:
                conn.add_gossip(channel, rest)
            if own is not None and conn.remote_name not in told:
                conn.add_gossip(channel, own)

    def _relay(self, channel: str, src: int, data: GossipData, now: float) -> None:
        neighbours = self._routes.get(now).random_neighbours(src, self._rng)
        for conn in self._table.connections_to(neighbours):
            conn.add_gossip(channel, data)

    # ---- sending (through a channel's handle) --------------------------------------
    def unicast(self, channel: str, dst: int, msg: bytes) -> bool:
        body = bytes([Tag.GOSSIP_UNICAST]) + encode_gossip(
            Tag.GOSSIP_UNICAST, GossipMessage(channel, self._ourself, dst, msg)
        )
        if self._forward_unicast(dst, body, self._routes.fresh()):
            return True
        log.info("[gossip] %s: unknown relay destination: %s", channel, format_peer_name(dst))
        return False

    def broadcast(self, channel: str, update: GossipData) -> None:
        tree = self._routes.fresh().broadcast_all(self._ourself)
        self._relay_broadcast(channel, self._ourself, update, tree)

    def neighbour_subset(self, channel: str, update: GossipData) -> None:
        neighbours = self._routes.fresh().random_neighbours(self._ourself, self._rng)
        for conn in self._table.connections_to(neighbours):
            conn.add_gossip(channel, update)

    # ---- full state ----------------------------------------------------------------
    def send_all_down(self, conn: MeshConn, now: float) -> None:
        """Every channel's complete state, to a new connection."""
        for channel, gossiper in list(self._channels.items()):
            data = _full_state(channel, gossiper, now)
            if data is not None:
                conn.add_gossip(channel, data)

    def periodic(self, now: float) -> None:
        """Every channel's complete state, to random neighbours; but the topology's as
        :meth:`_periodic_topology` says."""
        for channel, gossiper in list(self._channels.items()):
            data = _full_state(channel, gossiper, now)
            if isinstance(data, TopologyGossipData):
                self._periodic_topology(channel, data, now)
            elif data is not None:
                self._relay(channel, self._ourself, data, now)

    def _periodic_topology(self, channel: str, data: TopologyGossipData, now: float) -> None:
        """Mesh sends the whole table to 2·log2 N neighbours every round: at 100 peers
        up to 290 KB each, 80% of a forming router's mesh bytes. Our round repairs the
        same losses for less. Our own entry goes to every connection, as each new
        version of it does (router._send_topology_update); and since every neighbour
        that said TopologyToAll in its handshake does the same with its entry, of the
        table a random neighbour gets only the entries it may not have from their
        owners. In a full mesh of our routers, that is none."""
        ours = TopologyGossipData(data.peers, {self._ourself})
        to_all = {self._ourself}
        for name, conn in self._table.by_peer.items():
            conn.add_gossip(channel, ours)
            if conn.remote is not None and conn.remote.topology_to_all:
                to_all.add(name)
        neighbours = self._routes.get(now).random_neighbours(self._ourself, self._rng)
        for conn in self._table.connections_to(neighbours):
            lacking = data.lacking_first_hand(conn.remote_name, to_all)
            if lacking is not None:
                conn.add_gossip(channel, lacking)


def _sends_own_to_all(conn: MeshConn, src: int) -> bool:
    """The message on ``conn`` comes from ``src`` itself, which says (in its handshake)
    that it sends each version of its own entry to every connection it has."""
    remote = conn.remote
    return remote is not None and remote.topology_to_all and src == conn.remote_name


def _full_state(name: str, gossiper: Gossiper, now: float) -> GossipData | None:
    """A channel's complete state. Not caused by any one message, so a protocol error
    here closes nothing: it is logged and the channel skipped this time."""
    try:
        return gossiper.gossip(now)
    except RemoteProtocolError as exc:
        log.warning("[gossip] channel %s failed to produce its state: %s", name, exc)
        return None


class GossipHandle:
    """The sending side of one channel, handed to its owner (mesh gossipChannel). Sends
    go along routes as they are now, so ``now`` is not needed yet; it is in the
    signature so that owners never have to change when it is."""

    def __init__(self, router: GossipRouter, channel: str) -> None:
        self._router = router
        self._channel = channel

    def gossip_unicast(self, dst: int, msg: bytes, now: float) -> bool:
        return self._router.unicast(self._channel, dst, msg)

    def gossip_broadcast(self, update: GossipData, now: float) -> None:
        self._router.broadcast(self._channel, update)

    def gossip_neighbour_subset(self, update: GossipData, now: float) -> None:
        self._router.neighbour_subset(self._channel, update)
