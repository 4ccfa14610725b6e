"""The ``topology`` gossip channel: topology is just another Gossiper (mesh router.go)."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from weavenet.core.mesh.gossip import GossipData
from weavenet.core.mesh.peers import Peers

TOPOLOGY_CHANNEL = "topology"


class TopologyGossipData(msgspec.Struct):
    """A set of peer names; encoded from the live table at send time, so it is never stale."""

    peers: Peers
    names: set[int]

    def encode(self) -> list[bytes]:
        payload = self.peers.encode(self.names)
        return [payload] if payload else []  # nothing left to say about these names

    def merge(self, other: GossipData) -> GossipData:
        assert isinstance(other, TopologyGossipData)
        return TopologyGossipData(self.peers, self.names | other.names)

    def split(self, name: int) -> tuple[TopologyGossipData | None, TopologyGossipData | None]:
        """(``name``'s entry alone, the rest); None for a part that would be empty."""
        own = TopologyGossipData(self.peers, {name}) if name in self.names else None
        rest = self.names - {name}
        return own, (TopologyGossipData(self.peers, rest) if rest else None)

    def lacking_first_hand(self, receiver: int, to_all: set[int]) -> TopologyGossipData | None:
        """The entries ``receiver`` may not have had from their owners; None if none.

        A peer in ``to_all`` sends each version of its entry to every connection it has
        when it publishes it, and again to each new one (TopologyToAll): if that version
        lists ``receiver`` as a connection, ``receiver`` got it straight from the owner,
        over TCP. ``receiver``'s own entry is its own."""
        lacking = set()
        for name in self.names:
            if name == receiver:
                continue
            entry = self.peers.carried(name)
            if entry is None or name not in to_all or receiver not in entry.connections:
                lacking.add(name)
        return TopologyGossipData(self.peers, lacking) if lacking else None


class TopologyGossiper:
    """Applies topology updates to the peer table; ``on_change`` runs after any news."""

    def __init__(self, peers: Peers, on_change: Callable[[float], None]) -> None:
        self.peers = peers
        self.on_change = on_change

    def _apply(self, update: bytes, now: float) -> tuple[set[int], set[int]]:
        received, new = self.peers.apply_update(update)
        if new:
            self.on_change(now)
        return received, new

    def on_gossip_unicast(self, src: int, msg: bytes, now: float) -> None:
        return None  # Go never sends topology unicasts

    def on_gossip_broadcast(self, src: int, update: bytes, now: float) -> GossipData | None:
        received, _ = self._apply(update, now)
        return TopologyGossipData(self.peers, received) if received else None

    def gossip(self, now: float) -> GossipData | None:
        return TopologyGossipData(self.peers, {p.name for p in self.peers})

    def on_gossip(self, msg: bytes, now: float) -> GossipData | None:
        _, new = self._apply(msg, now)
        return TopologyGossipData(self.peers, new) if new else None
