"""The topology table ("Peers"): every peer we know, merged from gossip (§5).

Mirrors ``mesh:peers.go`` and the local-peer part of ``mesh:local_peer.go``.
Pure state: the caller decides when to gossip, recompute routes and run GC.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from weavenet.core.errors import LocalProtocolError
from weavenet.core.mesh.peer import (
    CONNECTION_SUMMARIES,
    CONNECTION_SUMMARY,
    PEER_SUMMARY,
    SHORT_ID_BITS,
    ConnectionSummary,
    Peer,
    TopologyError,
    supersedes,
)
from weavenet.core.mesh.peer_status import PeerStatusRows
from weavenet.core.mesh.routes import Adjacency, compute_routes
from weavenet.core.mesh.topology_codec import EncodedPeers, decode_update
from weavenet.core.peername import format_peer_name

__all__ = [
    "CONNECTION_SUMMARIES",
    "CONNECTION_SUMMARY",
    "PEER_SUMMARY",
    "ConnectionSummary",
    "Peer",
    "Peers",
    "TopologyError",
]

_UINT64_MAX = (1 << 64) - 1
_SHORT_ID_SPACE = 1 << SHORT_ID_BITS
_SHORT_ID_RANDOM_TRIES = 10


class Peers:
    """All known peers, including ourself (never removed)."""

    def __init__(self, ourself: Peer, rng: random.Random) -> None:
        # Go starts at Version 0; a Go peer records us at Version 0 from the
        # handshake and would ignore an update at that version, so start at 1.
        ourself.version = max(ourself.version, 1)
        self._ourself = ourself
        self._rng = rng
        self._by_name: dict[int, Peer] = {ourself.name: ourself}
        self._refs: dict[int, int] = {}
        self._unreachable_since: dict[int, float] = {}  # held from collection, see garbage_collect
        self._short_index: dict[int, Peer] | None = None
        self._encoded = EncodedPeers()
        self._published = self._snapshot()
        self._adjacent: dict[int, dict[int, bool]] = {}  # per peer, until its entry changes
        self._status_rows = PeerStatusRows()

    # --- lookup -------------------------------------------------------------

    @property
    def ourself(self) -> Peer:
        return self._ourself

    def get(self, name: int) -> Peer | None:
        return self._by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Peer]:
        return iter([self._by_name[name] for name in sorted(self._by_name)])

    def unordered(self) -> Iterable[Peer]:
        """Every peer, in no particular order (cheaper than iterating, which sorts)."""
        return self._by_name.values()

    def __len__(self) -> int:
        return len(self._by_name)

    def names(self) -> set[int]:
        return set(self._by_name)

    def adjacency(self) -> Adjacency:
        """Snapshot: name -> {remote name: established} for every known peer.

        Routes are recomputed after every burst of topology news, and most entries have
        not changed since the last time: each peer's mapping is built once per change of
        its entry and shared by every snapshot until then (never mutated: a change makes
        a new one)."""
        cache = self._adjacent
        out: dict[int, Mapping[int, bool]] = {}
        for name, peer in self._by_name.items():
            adjacent = cache.get(name)
            if adjacent is None:
                adjacent = {remote: conn.established for remote, conn in peer.connections.items()}
                cache[name] = adjacent
            out[name] = adjacent
        return out

    def _entry_changed(self, name: int) -> None:
        self._adjacent.pop(name, None)

    def get_by_short_id(self, short_id: int) -> Peer | None:
        """The owner of a ShortID: the lowest-named peer announcing it (fastdp VNI)."""
        if self._short_index is None:
            index: dict[int, Peer] = {}
            for peer in self:  # ascending names: the first holder is the owner
                if peer.has_short_id:
                    index.setdefault(peer.short_id, peer)
            self._short_index = index
        return self._short_index.get(short_id)

    # --- our own entry --------------------------------------------------------

    def _snapshot(self) -> Peer:
        me = self._ourself
        return Peer(
            me.name,
            me.nickname,
            me.uid,
            me.version,
            me.short_id,
            me.has_short_id,
            dict(me.connections),
        )

    def publish(self) -> None:
        """Let gossip carry our entry as it is now.

        Gossip (full state down new connections, relays, periodic rounds) carries the
        entry last published, not the live one: a router joining a mesh of N changes its
        entry twice per connection, and spreading every intermediate version made each
        router decode O(N) versions of every peer, O(N^3) connection summaries in all.
        The router publishes when its coalesced topology update goes out, so the mesh
        sees one version of us per coalescing period."""
        self._published = self._snapshot()

    @property
    def published(self) -> Peer:
        """Our entry as gossip last carried it."""
        return self._published

    def carried(self, name: int) -> Peer | None:
        """``name``'s entry as our gossip carries it: ours as last published."""
        return self._published if name == self._ourself.name else self._by_name.get(name)

    def _bump(self) -> None:
        self._ourself.version = min(self._ourself.version + 1, _UINT64_MAX)

    def add_local_connection(
        self, remote: int, remote_tcp_addr: str, outbound: bool, established: bool
    ) -> None:
        """Record (or replace) our connection to ``remote``; bumps our Version.

        ``remote`` should already be registered with :meth:`fetch_with_default`;
        if it is unknown a placeholder entry is created for it.
        """
        if remote == self._ourself.name:
            raise LocalProtocolError("cannot add a connection to ourself")
        if remote not in self._by_name:
            self._by_name[remote] = Peer.placeholder(remote)
            self._entry_changed(remote)
        conn = ConnectionSummary(remote, remote_tcp_addr, outbound, established)
        self._ourself.connections[remote] = conn
        self._entry_changed(self._ourself.name)
        self._bump()

    def set_local_connection_established(self, remote: int) -> None:
        """Mark our connection to ``remote`` established; bumps our Version.

        A no-op when we have no connection to ``remote``.
        """
        conn = self._ourself.connections.get(remote)
        if conn is None:
            return
        self._ourself.connections[remote] = ConnectionSummary(
            remote, conn.remote_tcp_addr, conn.outbound, True
        )
        self._entry_changed(self._ourself.name)
        self._bump()

    def forming(self) -> bool:
        """Whether one of our connections is not established yet."""
        return not all(conn.established for conn in self._ourself.connections.values())

    def routable(self, published: bool = False) -> bool:
        """Whether one of our connections is established (``published``: in the entry
        gossip last carried): what others need to see before they have a route to us."""
        entry = self._published if published else self._ourself
        return any(conn.established for conn in entry.connections.values())

    def delete_local_connection(self, remote: int) -> None:
        """Forget our connection to ``remote``; bumps our Version if there was one.

        Call :meth:`garbage_collect` afterwards (Go does so before gossiping).
        """
        if self._ourself.connections.pop(remote, None) is not None:
            self._entry_changed(self._ourself.name)
            self._bump()

    # --- local references -------------------------------------------------------

    def fetch_with_default(self, peer: Peer) -> Peer:
        """Return the known peer of that name, else insert ``peer``; take a reference."""
        existing = self._by_name.get(peer.name)
        if existing is None:
            self._by_name[peer.name] = peer
            self._entry_changed(peer.name)
            self._short_index = None
            existing = peer
        self.add_ref(peer.name)
        return existing

    def add_ref(self, name: int) -> None:
        if name not in self._by_name:
            raise LocalProtocolError(f"add_ref: unknown peer {format_peer_name(name)}")
        self._refs[name] = self._refs.get(name, 0) + 1

    def release_ref(self, name: int) -> None:
        count = self._refs.get(name, 0)
        if count <= 0:
            raise LocalProtocolError(f"release_ref: no reference held on {format_peer_name(name)}")
        if count == 1:
            del self._refs[name]
        else:
            self._refs[name] = count - 1

    def ref_count(self, name: int) -> int:
        return self._refs.get(name, 0)

    # --- gossip -------------------------------------------------------------------

    def encode(self, names: Iterable[int] | None = None) -> bytes:
        """Topology payload for ``names`` (None: every peer); unknown names, and the
        unreachable ones held from collection, skipped (Go would have collected them);
        b"" if that leaves none."""
        wanted = self._by_name.keys() if names is None else set(names)
        us, held = self._ourself.name, self._unreachable_since
        entries = [
            self._published if n == us else self._by_name[n]
            for n in sorted(wanted)
            if n in self._by_name and n not in held
        ]
        return self._encoded.encode(entries) if entries else b""

    def apply_update(self, data: bytes) -> tuple[set[int], set[int]]:
        """Merge a received topology payload (§5.2).

        Returns (names of all received entries, names whose record changed). Our
        own name is in the second set when an old incarnation of ourselves forced
        a Version bump. Does not garbage-collect: the caller runs
        :meth:`garbage_collect` (and should drop removed names from the "new" set).
        Raises TopologyError/GobError on malformed data, leaving the table unchanged.
        """
        decoded, skipped = decode_update(data, self._already_known)
        received = {peer.name for peer in decoded} | skipped
        for peer in decoded:
            for remote in peer.connections:
                if remote not in self._by_name and remote not in received:
                    self._by_name[remote] = Peer.placeholder(remote)
                    self._entry_changed(remote)
        changed: set[int] = set()
        for new in decoded:
            if self._merge_entry(new):
                changed.add(new.name)
        if changed:
            self._short_index = None
        return received, changed

    def _already_known(self, summary: Peer) -> bool:
        """An entry identical in identity and version to ours merges to nothing."""
        old = self._by_name.get(summary.name)
        return (
            old is not None
            and old is not self._ourself
            and (old.uid, old.version, old.has_short_id)
            == (summary.uid, summary.version, summary.has_short_id)
        )

    def _merge_entry(self, new: Peer) -> bool:
        """Apply one decoded entry; return whether it changed our table."""
        if new.name == self._ourself.name:
            # An entry about an old incarnation of ourselves: outbid it.
            if new.uid != self._ourself.uid and new.version >= self._ourself.version:
                self._ourself.version = min(new.version + 1, _UINT64_MAX)
                self.publish()  # the relay of this news must carry the outbidding version
                return True
            return False
        old = self._by_name.get(new.name)
        if old is None:
            self._by_name[new.name] = new
            self._entry_changed(new.name)
            return True
        if not supersedes(new, old):
            return False
        self._entry_changed(new.name)
        old.version = new.version
        old.uid = new.uid
        old.nickname = new.nickname
        old.short_id = new.short_id
        old.has_short_id = new.has_short_id
        old.connections = new.connections
        return True

    # --- housekeeping ---------------------------------------------------------------

    def garbage_collect(self, now: float = 0.0, grace: float = 0.0) -> list[Peer]:
        """Remove the peers that have been unreachable from us (over any connection) and
        unreferenced for ``grace`` seconds at ``now``.

        Until then such a peer is held: left out of what we gossip, as if collected, but
        its entry kept, so that the copies of it still on their way merge to nothing.
        While a mesh forms, peers are often unreachable for a moment; collected at once,
        each was learnt again, as news, and relayed again (BENCHMARKS.md, "Scale")."""
        _, reached = compute_routes(self, self._ourself.name, None, False)
        refs, since = self._refs, self._unreachable_since
        unreached = {n for n in self._by_name if n not in reached and not refs.get(n)}
        for name in [n for n in since if n not in unreached]:
            del since[name]
        due = {name for name in unreached if since.setdefault(name, now) + grace <= now}
        going = self._listed_by_none_kept(set(due))
        for name in due - going:
            since[name] = now  # kept for a held peer: a grace of its own again, from now
        removed = [self._by_name[name] for name in sorted(going)]
        for peer in removed:
            del since[peer.name]
            del self._by_name[peer.name]
            self._entry_changed(peer.name)
        if removed:
            self._short_index = None
        return removed

    def _listed_by_none_kept(self, due: set[int]) -> set[int]:  # takes ``due`` over
        """Of the peers ``due`` for collection, those no entry that stays lists. A held
        peer (unreachable, in its grace) keeps the peers it lists: it may become
        reachable again, and then each of them must have an entry (the table stays
        closed, which the routes and discovery rely on)."""
        while due:
            kept = {
                remote
                for name, peer in self._by_name.items()
                if name not in due
                for remote in peer.connections
                if remote in due
            }
            if not kept:
                break
            due -= kept
        return due

    def held_since(self) -> float:
        """When the longest-held unreachable peer was found unreachable (inf: none is).
        Its collection is due at ``held_since() + grace``, the sum garbage_collect tests."""
        return min(self._unreachable_since.values(), default=float("inf"))

    def check_short_id_collision(self) -> bool:
        """Move off our ShortID if a lower-named peer holds it (``peers.go:addByShortID``).

        Returns True when our ShortID (and Version) changed. Returns False when
        there is no collision, or when every ShortID is taken (retry after GC).
        """
        me = self._ourself
        if not me.has_short_id:
            return False
        owner = self.get_by_short_id(me.short_id)
        if owner is None or owner is me:
            return False
        new_id = self._choose_short_id()
        if new_id is None:
            return False
        me.short_id = new_id
        self._bump()
        self._short_index = None
        return True

    def _choose_short_id(self) -> int | None:
        used = {peer.short_id for peer in self._by_name.values() if peer.has_short_id}
        for _ in range(_SHORT_ID_RANDOM_TRIES):
            candidate = self._rng.randrange(_SHORT_ID_SPACE)
            if candidate not in used:
                return candidate
        free = [sid for sid in range(_SHORT_ID_SPACE) if sid not in used]
        if not free:
            return None
        return free[self._rng.randrange(len(free))]

    # --- status ----------------------------------------------------------------------

    def peer_status_list(self) -> list[dict[str, Any]]:
        """The /report ``Peers`` array (Go ``mesh:status.go:PeerStatus``)."""
        return self._status_rows.rows(self)
