"""Routes (§5.3): unicast, broadcast, random neighbours and the /report views."""

from __future__ import annotations

import json
import math
import random
from collections import deque
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.mesh.peer import encode_peers
from weavenet.core.mesh.peers import ConnectionSummary, Peer, Peers
from weavenet.core.mesh.routes import Routes, compute_routes
from weavenet.core.peername import UNKNOWN_PEER_NAME, parse_peer_name

A, B, C, D, E = 0xA, 0xB, 0xC, 0xD, 0xE

Adj = dict[int, dict[int, bool]]


def undirected(*edges: tuple[int, int], established: bool = True) -> Adj:
    adj: Adj = {}
    for x, y in edges:
        adj.setdefault(x, {})[y] = established
        adj.setdefault(y, {})[x] = established
    return adj


def flood(adj: Adj, src: int, all_connections: bool) -> dict[int, int]:
    """Deliver one broadcast from ``src``; every node forwards per its own Routes."""
    routes = {name: Routes(name, adj) for name in adj}
    received = dict.fromkeys(adj, 0)

    def hops(node: int) -> list[int]:
        r = routes[node]
        return r.broadcast_all(src) if all_connections else r.broadcast(src)

    queue = deque(hops(src))
    steps = 0
    while queue:
        node = queue.popleft()
        received[node] += 1
        steps += 1
        assert steps <= len(adj) ** 2, "broadcast loops"
        if received[node] == 1:
            queue.extend(hops(node))
    return received


def component(adj: Adj, src: int, symmetric: bool) -> set[int]:
    seen, todo = {src}, [src]
    while todo:
        cur = todo.pop()
        for remote, est in adj.get(cur, {}).items():
            usable = not symmetric or (est and adj.get(remote, {}).get(cur, False))
            if usable and remote not in seen:
                seen.add(remote)
                todo.append(remote)
    return seen


# --- unicast ----------------------------------------------------------------------


def test_chain_unicast_goes_via_middle() -> None:
    routes = Routes(A, undirected((A, B), (B, C)))
    assert routes.unicast == {A: UNKNOWN_PEER_NAME, B: B, C: B}
    assert routes.lookup(C) == B and routes.lookup_all(C) == B
    assert routes.lookup(A) == UNKNOWN_PEER_NAME
    assert routes.lookup(D) is None and routes.lookup_all(D) is None


def test_established_and_symmetric_ignores_one_sided_and_pending() -> None:
    adj: Adj = {
        A: {B: True, D: True},
        B: {A: True, C: True},  # C does not list B: one-sided
        C: {},
        D: {A: False},  # D has not seen the connection established
    }
    routes = Routes(A, adj)
    assert routes.unicast == {A: UNKNOWN_PEER_NAME, B: B}
    assert routes.unicast_all == {A: UNKNOWN_PEER_NAME, B: B, D: D, C: B}


def test_unestablished_local_side_is_ignored() -> None:
    adj: Adj = {A: {B: False}, B: {A: True}}
    assert Routes(A, adj).unicast == {A: UNKNOWN_PEER_NAME}
    assert Routes(B, adj).unicast == {B: UNKNOWN_PEER_NAME}


def test_equal_distance_takes_lowest_named_parent() -> None:
    adj = undirected((A, C), (A, B), (C, E), (B, E))
    assert Routes(A, adj).unicast[E] == B
    adj2 = undirected((A, C), (A, D), (C, E), (D, E))
    assert Routes(A, adj2).unicast[E] == C


def test_compute_routes_stop_at() -> None:
    adj = undirected((A, B), (B, C), (C, D))
    assert compute_routes(adj, A, C, True) == (True, {A: 0, B: B, C: B})
    assert compute_routes(adj, A, E, True) == (False, {A: 0, B: B, C: B, D: B})


def test_compute_routes_on_peers_table() -> None:
    peers = Peers(Peer(A, "a", 1, 1, 1, True), random.Random(0))
    peers.add_local_connection(B, "b:1", True, True)
    b = Peer(B, "b", 2, 3, 2, True)
    b.connections[A] = ConnectionSummary(A, "a:1", False, True)
    peers.apply_update(encode_peers([b]))
    assert compute_routes(peers, A, None, True) == (False, {A: 0, B: B})
    routes = Routes.compute(peers)
    peers.delete_local_connection(B)  # a snapshot: later changes do not leak in
    assert routes.lookup(B) == B and routes.broadcast(A) == [B]


# --- broadcast ----------------------------------------------------------------------


def test_broadcast_on_chain() -> None:
    adj = undirected((A, B), (B, C))
    at_b = Routes(B, adj)
    assert at_b.broadcast(A) == [C] and at_b.broadcast(C) == [A]
    assert at_b.broadcast(B) == [A, C]
    at_a = Routes(A, adj)
    assert at_a.broadcast(A) == [B] and at_a.broadcast(C) == [] and at_a.broadcast(B) == []
    assert at_a.broadcast(0x99) == []
    for src in (A, B, C):
        assert flood(adj, src, False) == {n: int(n != src) for n in adj}


def test_broadcast_on_ring_reaches_everyone_once() -> None:
    ring = undirected((A, B), (B, C), (C, D), (D, E), (E, A))
    for src in ring:
        for all_connections in (False, True):
            assert flood(ring, src, all_connections) == {n: int(n != src) for n in ring}


def test_broadcast_skips_unestablished_but_broadcast_all_does_not() -> None:
    adj = undirected((A, B), (B, C))
    adj[C][B] = False
    assert Routes(B, adj).broadcast(A) == []
    assert Routes(B, adj).broadcast_all(A) == [C]
    assert flood(adj, A, False) == {A: 0, B: 1, C: 0}
    assert flood(adj, A, True) == {A: 0, B: 1, C: 1}


@st.composite
def graphs(draw: st.DrawFn) -> Adj:
    names = draw(st.lists(st.integers(1, (1 << 48) - 1), min_size=2, max_size=9, unique=True))
    edges = {(names[i], names[draw(st.integers(0, i - 1))]) for i in range(1, len(names))}
    pairs = st.tuples(st.sampled_from(names), st.sampled_from(names))
    edges |= {(x, y) for x, y in draw(st.lists(pairs, max_size=12)) if x != y}
    adj: Adj = {name: {} for name in names}
    for x, y in edges:
        adj[x][y] = draw(st.booleans()) or draw(st.booleans())
        adj[y][x] = draw(st.booleans()) or draw(st.booleans())
    return adj


@settings(deadline=None, max_examples=100)
@given(graphs())
def test_broadcast_reaches_every_peer_exactly_once(adj: Adj) -> None:
    for src in adj:
        for all_connections in (False, True):
            reach = component(adj, src, symmetric=not all_connections)
            expected = {n: int(n in reach and n != src) for n in adj}
            assert flood(adj, src, all_connections) == expected


def full_search(adj: Adj, start: int, symmetric: bool) -> dict[int, int]:
    """Go's breadth-first widening, every level to the end (no early stop)."""
    routes, next_work = {start: UNKNOWN_PEER_NAME}, [start]
    while next_work:
        work, next_work = sorted(next_work), []
        for cur in work:
            for remote, est in adj.get(cur, {}).items():
                usable = not symmetric or (est and adj.get(remote, {}).get(cur, False))
                if usable and remote not in routes:
                    next_work.append(remote)
                    routes[remote] = remote if cur == start else routes[cur]
    return routes


@st.composite
def dense_graphs(draw: st.DrawFn) -> Adj:
    """Near-full meshes, where the search can stop after the first hop."""
    names = draw(st.lists(st.integers(1, 1000), min_size=2, max_size=8, unique=True))
    adj: Adj = {x: {y: True for y in names if y != x} for x in names}
    for x, y in draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)))):
        adj[x].pop(y, None)
    return adj


@settings(deadline=None, max_examples=150)
@given(st.one_of(graphs(), dense_graphs()))
def test_unicast_routes_match_a_search_to_the_end(adj: Adj) -> None:
    for start in adj:
        routes = Routes(start, adj)
        assert routes.unicast == full_search(adj, start, symmetric=True)
        assert routes.unicast_all == full_search(adj, start, symmetric=False)


# --- random neighbours ------------------------------------------------------------


def star(leaves_per_neighbour: dict[int, int]) -> Adj:
    adj: Adj = {A: {}}
    leaf = 0x1000
    for neighbour, count in leaves_per_neighbour.items():
        adj[A][neighbour] = True
        adj[neighbour] = {A: True}
        for _ in range(count):
            leaf += 1
            adj[neighbour][leaf] = True
            adj[leaf] = {neighbour: True}
    return adj


@settings(deadline=None, max_examples=100)
@given(st.lists(st.integers(0, 6), max_size=14), st.integers(0, 20), st.integers(0, 2**32))
def test_random_neighbours_count_and_distinctness(
    leaves: list[int], except_index: int, seed: int
) -> None:
    neighbours = {0x100 + i: n for i, n in enumerate(leaves)}
    routes = Routes(A, star(neighbours))
    except_name = 0x100 + except_index
    chosen = routes.random_neighbours(except_name, random.Random(seed))
    candidates = set(neighbours) - {except_name}
    expected = int(min(2 * math.log2(len(routes.unicast_all)), len(candidates)))
    assert len(chosen) == expected
    assert len(set(chosen)) == len(chosen)
    assert set(chosen) <= candidates


def test_random_neighbours_small_cases() -> None:
    assert Routes(A, {A: {}}).random_neighbours(A, random.Random(1)) == []
    two = Routes(A, undirected((A, B)))
    assert two.random_neighbours(A, random.Random(1)) == [B]
    assert two.random_neighbours(B, random.Random(1)) == []


def test_random_neighbours_favours_bottleneck_links() -> None:
    light = {0x100 + i: 0 for i in range(20)}
    routes = Routes(A, star({0x200: 30, **light}))
    rng = random.Random(7)
    picks = [routes.random_neighbours(0, rng) for _ in range(300)]
    assert all(len(p) == 11 for p in picks)  # floor(2*log2(52)) = 11 of 21 neighbours
    heavy_rate = sum(0x200 in p for p in picks) / len(picks)
    light_rate = sum(0x100 in p for p in picks) / len(picks)
    assert heavy_rate > 0.95 and 0.3 < light_rate < 0.7


# --- status views ----------------------------------------------------------------


def test_status_views_match_sample_report() -> None:
    report = json.loads(
        (
            Path(__file__).resolve().parents[1] / "fixtures" / "weave28" / "h1-plain-report.json"
        ).read_text()
    )["Router"]
    h1, h2 = parse_peer_name("a2:00:00:00:00:01"), parse_peer_name("a2:00:00:00:00:02")
    peers = Peers(Peer(h1, "anc-h1", 1, 0, 215, True), random.Random(0))
    peers.add_local_connection(h2, "172.31.77.2:58841", False, True)
    them = Peer(h2, "anc-h2", 2, 2, 1892, True)
    them.connections[h1] = ConnectionSummary(h1, "172.31.77.1:6783", True, True)
    peers.apply_update(encode_peers([them]))
    routes = Routes.compute(peers)
    assert routes.unicast_status() == report["UnicastRoutes"]
    assert routes.broadcast_status(peers) == report["BroadcastRoutes"]


def test_route_cache_last_is_the_table_computed_last_however_old() -> None:
    from weavenet.core.mesh.routes import RouteCache

    peers = Peers(Peer(A, "a", 1, 0, 1, True), random.Random(1))
    cache = RouteCache(peers)
    assert cache.last() is None
    first = cache.get(0.0)
    assert cache.last() is first and first.lookup_all(B) is None
    peers.add_local_connection(B, "10.0.0.2:6783", True, True)
    cache.invalidate()
    assert cache.last() is first  # asked for nothing: nothing recomputed
    second = cache.get(0.0)
    assert second is not first and second.lookup_all(B) == B
    assert cache.last() is second
    cache.topology_changed()
    assert cache.fresh() is cache.last() is not second
