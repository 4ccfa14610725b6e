"""Gossip seams (mesh's Gossiper/GossipData), the surrogate for unknown channels, and
per-connection send queues that merge pending data instead of piling it up."""

from __future__ import annotations

import hashlib
from typing import Protocol

import msgspec

from weavenet.core.mesh.protocol import Tag

GOSSIP_INTERVAL = 30.0


class GossipData(Protocol):
    def encode(self) -> list[bytes]:
        """One or more payloads, each sent as its own protocol message."""
        ...

    def merge(self, other: GossipData) -> GossipData:
        """Combine with other pending data for the same destination."""
        ...


class Gossiper(Protocol):
    """What a channel's owner implements (mesh gossip.go, comments kept). Every method
    gets ``now``. Any of them may raise :class:`RemoteProtocolError` (or a subclass): the
    router then closes the connection the message arrived on, as mesh does when a
    Gossiper returns an error. Any other exception is a bug."""

    def on_gossip_unicast(self, src: int, msg: bytes, now: float) -> None:
        """A message addressed to us."""
        ...

    def on_gossip_broadcast(self, src: int, update: bytes, now: float) -> GossipData | None:
        """Merge a broadcast; return what to pass on, or None."""
        ...

    def gossip(self, now: float) -> GossipData | None:
        """The complete state, sent periodically and to new connections."""
        ...

    def on_gossip(self, msg: bytes, now: float) -> GossipData | None:
        """Merge periodic gossip; return everything new we just learnt, or None."""
        ...


class Gossip(Protocol):
    """What :meth:`Router.new_gossip` returns: the channel owner sends with it."""

    def gossip_unicast(self, dst: int, msg: bytes, now: float) -> bool:
        """Send ``msg`` to peer ``dst`` along the unicast routes; False (logged) if
        there is no route to it."""
        ...

    def gossip_broadcast(self, update: GossipData, now: float) -> None:
        """Send ``update`` to every peer along our broadcast tree."""
        ...

    def gossip_neighbour_subset(self, update: GossipData, now: float) -> None:
        """Send ``update`` as gossip to a random subset of our neighbours."""
        ...


class BytesGossipData(msgspec.Struct):
    """Opaque payloads relayed as they came (surrogate channels)."""

    payloads: list[bytes]

    def encode(self) -> list[bytes]:
        return list(self.payloads)

    def merge(self, other: GossipData) -> GossipData:
        assert isinstance(other, BytesGossipData)
        merged = list(self.payloads)
        merged.extend(p for p in other.payloads if p not in merged)
        return BytesGossipData(merged)


class SurrogateGossiper(msgspec.Struct):
    """Stands in for a channel we do not implement so that mixed clusters still relay it.

    Unicasts to us are ignored, broadcasts relayed unchanged, and periodic gossip relayed
    unless an identical payload was seen within the last gossip interval."""

    _seen: dict[bytes, float] = msgspec.field(default_factory=dict)

    def on_gossip_unicast(self, src: int, msg: bytes, now: float) -> None:
        return None

    def on_gossip_broadcast(self, src: int, update: bytes, now: float) -> GossipData | None:
        return BytesGossipData([update])

    def gossip(self, now: float) -> GossipData | None:
        return None

    def on_gossip(self, msg: bytes, now: float) -> GossipData | None:
        digest = hashlib.blake2b(msg, digest_size=16).digest()
        for key, seen_at in list(self._seen.items()):
            if now - seen_at > GOSSIP_INTERVAL:
                del self._seen[key]
        if digest in self._seen:
            return None
        self._seen[digest] = now
        return BytesGossipData([msg])


class PendingGossip(msgspec.Struct):
    """Everything waiting to go down one connection, merged per channel and source."""

    gossip: dict[str, GossipData] = msgspec.field(default_factory=dict)
    broadcasts: dict[tuple[str, int], GossipData] = msgspec.field(default_factory=dict)

    def add_gossip(self, channel: str, data: GossipData) -> None:
        old = self.gossip.get(channel)
        self.gossip[channel] = data if old is None else old.merge(data)

    def add_broadcast(self, channel: str, src: int, data: GossipData) -> None:
        old = self.broadcasts.get((channel, src))
        self.broadcasts[(channel, src)] = data if old is None else old.merge(data)

    def __bool__(self) -> bool:
        return bool(self.gossip or self.broadcasts)

    def drain(self) -> list[tuple[Tag, str, int | None, bytes]]:
        """(tag, channel, broadcast source or None, payload); gossip goes before broadcasts."""
        out: list[tuple[Tag, str, int | None, bytes]] = []
        for channel, data in self.gossip.items():
            out.extend((Tag.GOSSIP, channel, None, p) for p in data.encode())
        for (channel, src), data in self.broadcasts.items():
            out.extend((Tag.GOSSIP_BROADCAST, channel, src, p) for p in data.encode())
        self.gossip.clear()
        self.broadcasts.clear()
        return out
