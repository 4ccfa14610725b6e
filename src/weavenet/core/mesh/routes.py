"""Route computation over the topology (§5.3; ``mesh:peer.go:routes``, ``mesh:routes.go``).

Every peer must compute exactly the same routes from the same topology, or
broadcasts loop or get lost, so the widening below follows Go step by step.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from weavenet.core.peername import UNKNOWN_PEER_NAME, format_peer_name

# name -> {remote name: that connection's Established flag}, as announced by `name`.
Adjacency = Mapping[int, Mapping[int, bool]]
# After topology news, gossip routes are recomputed at most this often (mesh defers too).
ROUTES_RECALC_DELAY = 0.2


class Named(Protocol):
    @property
    def name(self) -> int: ...


class Topology(Protocol):
    """What routes are computed from; :class:`weavenet.core.mesh.peers.Peers` is one.
    A Protocol rather than an import, so that peers.py may use this module.

    Closed: every remote that a peer reachable from ``ourself`` lists has an entry of its
    own (Peers makes a placeholder for each, and collects only unreachable peers that
    no staying entry lists). The
    route search stops once it has routed as many names as there are entries, which the
    remotes would otherwise be counted for: a set of N*(N-1) names for every snapshot, at
    N=100 a fifth of the routes' cost."""

    @property
    def ourself(self) -> Named: ...

    def adjacency(self) -> Adjacency: ...

    def __iter__(self) -> Iterator[Named]: ...


_EMPTY: Mapping[int, bool] = {}


def _usable(adj: Adjacency, cur: int, remote: int, established: bool, symmetric: bool) -> bool:
    """``forEachConnectedPeer``'s filter, minus the exclusion set."""
    if not symmetric:
        return True
    return established and adj.get(remote, _EMPTY).get(cur, False)


def _reaches(adj: Adjacency, start: int, dest: int) -> bool:
    """``dest`` among the routes ``_widen(adj, start, None, True)`` finds, by the same
    rule, stopping once it is met."""
    if dest == start:
        return True
    seen = {start}
    frontier = [start]
    while frontier:
        following = []
        for cur in frontier:
            for remote, established in adj.get(cur, _EMPTY).items():
                if remote in seen or not _usable(adj, cur, remote, established, True):
                    continue
                if remote == dest:
                    return True
                seen.add(remote)
                following.append(remote)
        frontier = following
    return False


def _widen(
    adj: Adjacency, start: int, stop_at: int | None, symmetric: bool, everyone: int = -1
) -> tuple[bool, dict[int, int]]:
    """``everyone``: how many names the adjacency holds (keys and remotes), to stop once
    all are routed; -1: search to the end (stop_at callers want the search itself)."""
    routes: dict[int, int] = {start: UNKNOWN_PEER_NAME}
    next_work = [start]
    while next_work and len(routes) != everyone:
        work = sorted(next_work)
        next_work = []
        for cur in work:
            if cur == stop_at:
                return True, routes
            for remote, established in adj.get(cur, _EMPTY).items():
                if symmetric and not established:
                    continue
                if remote in routes:
                    continue
                if not _usable(adj, cur, remote, established, symmetric):
                    continue
                next_work.append(remote)
                routes[remote] = remote if cur == start else routes[cur]
    return False, routes


def compute_routes(
    peers: Topology | Adjacency,
    start: int,
    stop_at: int | None,
    established_and_symmetric: bool,
) -> tuple[bool, dict[int, int]]:
    """Breadth-first widening from ``start``: (reached ``stop_at``?, dest -> next hop).

    ``start`` maps to UNKNOWN_PEER_NAME. With ``established_and_symmetric`` only
    connections both ends report as established are followed.
    """
    adj = peers if isinstance(peers, Mapping) else peers.adjacency()
    everyone = _name_count(adj) if stop_at is None else -1
    return _widen(adj, start, stop_at, established_and_symmetric, everyone)


def _name_count(adj: Mapping[int, Mapping[int, bool]]) -> int:
    """Every name in the adjacency, keys and remotes. Once every name is routed nothing
    can change: in a full mesh that is after the first hop, which saves looking at the
    other N-1 peers' N-1 connections each."""
    return len(set(adj).union(*adj.values()))


def _freeze(adj: Adjacency) -> dict[int, Mapping[int, bool]]:
    """The outer mapping copied; the inner ones are taken as they are: an Adjacency's
    per-peer mappings are snapshots that nobody mutates (Peers makes a new one for every
    change of an entry)."""
    return dict(adj)


class Routes:
    """Routes of one peer (``ourself``) over a snapshot of the topology."""

    def __init__(self, ourself: int, adjacency: Adjacency, closed: bool = False) -> None:
        """``closed``: every remote that a key reachable from ``ourself`` lists is a key
        too (a :class:`Topology` promises it), so no more names than the keys can be
        routed; else the names are counted, keys and remotes."""
        self.ourself = ourself
        self._adj = _freeze(adjacency)
        self._closed = closed
        self._broadcast: dict[int, list[int]] = {}
        self._broadcast_all: dict[int, list[int]] = {}

    # Each table is computed when first asked for: routes are recomputed after every
    # burst of topology news, and most computations are asked only one of them (gossip
    # the unicast_all one, the data plane the other); at 100 peers the two searches and
    # their name counts were a tenth of a converging router's CPU.
    @functools.cached_property
    def unicast(self) -> dict[int, int]:
        """dest -> next hop over established, symmetric connections (the data plane)."""
        return _widen(self._adj, self.ourself, None, True, self._names)[1]

    @functools.cached_property
    def unicast_all(self) -> dict[int, int]:
        """dest -> next hop over every announced connection (gossip)."""
        return _widen(self._adj, self.ourself, None, False, self._names)[1]

    @functools.cached_property
    def _names(self) -> int:
        return len(self._adj) if self._closed else _name_count(self._adj)

    @classmethod
    def compute(cls, peers: Topology) -> Routes:
        return cls(peers.ourself.name, peers.adjacency(), closed=True)

    def lookup(self, dest: int) -> int | None:
        """Next hop for data-plane traffic (ourself -> UNKNOWN_PEER_NAME); None: no route."""
        return self.unicast.get(dest)

    def reaches(self, dest: int) -> bool:
        """Whether data-plane traffic has a route to ``dest`` (``lookup(dest) is not None``)
        without computing the table for it: a search that ends when it meets ``dest``,
        usually among our neighbours' connections. One question about a table nobody else
        asked for (an added connection's log line: each such connection makes new routes)
        was a whole search each time, 3-5% of a converging router's CPU at 50-100 peers."""
        if "unicast" in self.__dict__:  # computed already (a cached_property)
            return dest in self.unicast
        return _reaches(self._adj, self.ourself, dest)

    def lookup_all(self, dest: int) -> int | None:
        """Next hop for gossip unicast, over all connections."""
        return self.unicast_all.get(dest)

    def broadcast(self, src: int) -> list[int]:
        """Where to pass on a data-plane broadcast originated by ``src`` (sorted)."""
        return self._memo(self._broadcast, src, True)

    def broadcast_all(self, src: int) -> list[int]:
        """Where to pass on a gossip broadcast originated by ``src`` (sorted)."""
        return self._memo(self._broadcast_all, src, False)

    def _memo(self, cache: dict[int, list[int]], src: int, symmetric: bool) -> list[int]:
        hops = cache.get(src)
        if hops is None:
            hops = self._calculate_broadcast(src, symmetric)
            cache[src] = hops
        return list(hops)

    def _calculate_broadcast(self, src: int, symmetric: bool) -> list[int]:
        if src not in self._adj:
            return []
        found, reached = _widen(self._adj, src, self.ourself, symmetric)
        if not found:
            return []
        return sorted(
            remote
            for remote, established in self._adj.get(self.ourself, _EMPTY).items()
            if remote not in reached
            and _usable(self._adj, self.ourself, remote, established, symmetric)
        )

    def random_neighbours(self, except_name: int, rng: random.Random) -> list[int]:
        """Gossip targets: min(floor(2*log2(#peers)), #neighbours) distinct neighbours.

        Each neighbour is weighted by how many destinations ``unicast_all`` routes
        through it (entries routed via ``except_name`` are not counted), then
        drawn by weighted sampling without replacement.
        """
        counts, order, equal = self._hop_counts
        if except_name in counts:
            order = [hop for hop in order if hop != except_name]
        needed = int(min(2 * math.log2(len(self.unicast_all)), len(order)))
        if not equal:  # without except_name the rest may still weigh the same
            weights = {hop: counts[hop] for hop in order}
            equal = len(set(weights.values())) <= 1
        if equal:  # e.g. a full mesh: plain sample
            return rng.sample(order, needed)
        total = sum(weights.values())
        chosen: list[int] = []
        while len(chosen) < needed:
            point = rng.randrange(total)
            for hop in order:
                if hop not in weights:
                    continue
                if point < weights[hop]:
                    chosen.append(hop)
                    total -= weights.pop(hop)
                    break
                point -= weights[hop]
        return chosen

    @functools.cached_property
    def _hop_counts(self) -> tuple[dict[int, int], list[int], bool]:
        """(destinations routed via each neighbour, the neighbours sorted, all counts
        equal): one pass per snapshot, not one per gossip relay."""
        counts: dict[int, int] = {}
        for hop in self.unicast_all.values():
            if hop != UNKNOWN_PEER_NAME:
                counts[hop] = counts.get(hop, 0) + 1
        return counts, sorted(counts), len(set(counts.values())) <= 1

    def unicast_status(self) -> list[dict[str, Any]]:
        """The /report ``UnicastRoutes`` array, sorted by destination."""
        return [
            {"Dest": format_peer_name(dest), "Via": format_peer_name(via)}
            for dest, via in sorted(self.unicast.items())
        ]

    def broadcast_status(self, peers: Topology) -> list[dict[str, Any]]:
        """The /report ``BroadcastRoutes`` array: one entry per known peer."""
        result: list[dict[str, Any]] = []
        for peer in peers:
            hops = self.broadcast(peer.name)
            via = [format_peer_name(hop) for hop in hops] if hops else None
            result.append({"Source": format_peer_name(peer.name), "Via": via})
        return result


class RouteCache:
    """The routes gossip is forwarded along, recomputed lazily. After topology news they
    are recomputed at most every ROUTES_RECALC_DELAY, so a burst of updates costs one
    computation; local connection changes (``invalidate``) take effect at once."""

    def __init__(self, topology: Topology) -> None:
        self._topology = topology
        self._routes: Routes | None = None
        self._last: Routes | None = None  # kept through invalidate, for last()
        self._computed_at = float("-inf")
        self._dirty = False

    def get(self, now: float) -> Routes:
        """Routes at most ROUTES_RECALC_DELAY behind topology news."""
        due = self._dirty and now >= self._computed_at + ROUTES_RECALC_DELAY
        if self._routes is None or due:
            self._routes = self._last = Routes.compute(self._topology)
            self._computed_at, self._dirty = now, False
        return self._routes

    def fresh(self) -> Routes:
        """Routes reflecting everything known now (mesh ``ensureRecalculated``)."""
        if self._routes is None or self._dirty:
            self._routes = self._last = Routes.compute(self._topology)
            self._dirty = False
        return self._routes

    def last(self) -> Routes | None:
        """The routes computed last, however old (None before the first): for answers
        that may lag, as Go's routes (recalculated in the background) do. Costs nothing,
        where ``get`` after our own connection changed recomputes."""
        return self._last

    def invalidate(self) -> None:
        """One of our own connections changed: recompute at the next use."""
        self._routes = None

    def topology_changed(self) -> None:
        """Others' topology changed: recompute once the deferral is over."""
        self._dirty = True
