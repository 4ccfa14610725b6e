"""Message dispatch and gossip routing of the mesh router (mesh gossip_channel.go and
router.go ``handleGossip``): which connections get what, and the encoding of what is
pending. Functions of :class:`weavenet.core.mesh.router.Router`'s state."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from weavenet.core.effects import Send
from weavenet.core.errors import RemoteProtocolError
from weavenet.core.mesh import lifecycle
from weavenet.core.mesh.conn import MeshConn
from weavenet.core.mesh.gossip import GossipData, Gossiper, SurrogateGossiper
from weavenet.core.mesh.protocol import GossipMessage, Tag, decode_gossip, encode_gossip
from weavenet.core.peername import format_peer_name

if TYPE_CHECKING:
    from weavenet.core.mesh.router import Router

log = logging.getLogger("weavenet.mesh")

_GOSSIP_TAGS = {int(t): t for t in (Tag.GOSSIP, Tag.GOSSIP_UNICAST, Tag.GOSSIP_BROADCAST)}
# Gossip to one connection goes at most this often; what arrives meanwhile is merged, as
# mesh's per-connection senders merge under load. Keeps busy meshes from drowning in
# many small deltas.
GOSSIP_BATCH = 0.1


def handle_message(router: Router, conn: MeshConn, body: bytes, now: float) -> None:
    if not body:
        return  # Go ignores blank messages
    tag, payload = body[0], body[1:]
    if tag == Tag.HEARTBEAT:
        return
    if tag in _GOSSIP_TAGS:
        gossip_tag = _GOSSIP_TAGS[tag]
        handle_gossip(router, conn, gossip_tag, decode_gossip(gossip_tag, payload), body, now)
    elif tag in (Tag.RESERVED1, Tag.RESERVED2, Tag.RESERVED3, Tag.OVERLAY_CONTROL):
        if conn.overlay is not None:
            conn.overlay.control_message(tag, payload, now)
            lifecycle.pump_overlay(router, conn, now)
    else:
        log.debug("%s ignoring unknown protocol tag %d", conn.describe(), tag)


def channel(router: Router, name: str) -> Gossiper:
    gossiper = router.channels.get(name)
    if gossiper is None:
        log.info("[gossip] created surrogate channel %s", name)
        gossiper = router.channels[name] = SurrogateGossiper()
    return gossiper


def handle_gossip(
    router: Router, conn: MeshConn, tag: Tag, msg: GossipMessage, body: bytes, now: float
) -> None:
    gossiper = channel(router, msg.channel)
    if tag == Tag.GOSSIP_UNICAST:
        if msg.dst == router.name:
            gossiper.on_gossip_unicast(msg.src, msg.data, now)
        else:
            relay_unicast(router, msg, body)
    elif tag == Tag.GOSSIP_BROADCAST:
        data = gossiper.on_gossip_broadcast(msg.src, msg.data, now)
        if data is not None:
            for conn_to in connections_to(router, router.routes.broadcast_all(msg.src)):
                conn_to.add_broadcast(msg.channel, msg.src, data)
    else:
        data = gossiper.on_gossip(msg.data, now)
        if data is not None:
            for conn_to in connections_to(
                router, router.routes.random_neighbours(msg.src, router.rng)
            ):
                conn_to.add_gossip(msg.channel, data)


def connections_to(router: Router, names: list[int]) -> list[MeshConn]:
    return [router.by_peer[n] for n in names if n in router.by_peer]


def relay_unicast(router: Router, msg: GossipMessage, body: bytes) -> None:
    hop = router.routes.lookup_all(msg.dst or 0)
    conn = router.by_peer.get(hop) if hop else None
    if conn is None:
        log.info(
            "dropping gossip unicast for unknown destination %s", format_peer_name(msg.dst or 0)
        )
        return
    conn.send(body)


def periodic_gossip(router: Router, now: float) -> None:
    for channel, gossiper in list(router.channels.items()):
        data = full_state(channel, gossiper, now)
        if data is None:
            continue
        for conn in connections_to(
            router, router.routes.random_neighbours(router.name, router.rng)
        ):
            conn.add_gossip(channel, data)


def full_state(name: str, gossiper: Gossiper, now: float) -> GossipData | None:
    """A channel's complete state. Not caused by any one message, so a protocol error
    here closes nothing: it is logged and the channel skipped this time."""
    try:
        return gossiper.gossip(now)
    except RemoteProtocolError as exc:
        log.warning("[gossip] channel %s failed to produce its state: %s", name, exc)
        return None


class GossipHandle:
    """The sending side of one channel, handed to its owner (mesh gossipChannel)."""

    def __init__(self, router: Router, channel: str) -> None:
        self._router = router
        self._channel = channel

    def gossip_unicast(self, dst: int, msg: bytes, now: float) -> bool:
        return self._router.gossip_unicast(self._channel, dst, msg, now)

    def gossip_broadcast(self, update: GossipData, now: float) -> None:
        self._router.gossip_broadcast(self._channel, update, now)

    def gossip_neighbour_subset(self, update: GossipData, now: float) -> None:
        self._router.gossip_neighbour_subset(self._channel, update, now)


def flush(router: Router) -> None:
    touched = list(router._touched)  # every connection shares this one set
    router._touched.clear()
    for conn_id in touched:
        conn = router.conns.get(conn_id)
        if conn is None:
            continue
        if conn.pending and router._now < conn.gossip_ready_at:
            router.note_wakeup(conn.gossip_ready_at)
        elif conn.registered and conn.writable and conn.pending:
            conn.gossip_ready_at = router._now + GOSSIP_BATCH
            for tag, channel, src, payload in conn.pending.drain():
                origin = router.name if src is None else src
                msg = GossipMessage(channel, origin, None, payload)
                conn.send(bytes([tag]) + encode_gossip(tag, msg))
        if conn.out:
            router.effects.append(Send(conn.id, conn.take_output()))
