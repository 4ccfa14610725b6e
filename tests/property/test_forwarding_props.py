"""Forwarding on random connected topologies: a broadcast captured at one peer reaches
every other peer's bridge exactly once, and once MACs are learned a unicast reply
reaches only its owner, without flooding."""

from __future__ import annotations

from collections import Counter, deque

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.mesh.routes import Routes
from weavenet.core.overlay.forwarding import Forwarder, Send
from weavenet.core.overlay.mac_cache import MacCache

Adj = dict[int, dict[int, bool]]
BCAST = b"\xff" * 6


def mac(name: int) -> bytes:
    return bytes([2, 0, 0, 0, 0, name])


@st.composite
def topologies(draw: st.DrawFn) -> Adj:
    """A random spanning tree over 1..n plus random extra (established, symmetric) links."""
    n = draw(st.integers(2, 10))
    names = draw(st.permutations(list(range(1, n + 1))))
    adj: Adj = {name: {} for name in names}

    def link(x: int, y: int) -> None:
        adj[x][y] = adj[y][x] = True

    for i in range(1, n):
        link(names[i], names[draw(st.integers(0, i - 1))])
    pairs = [(x, y) for x in range(1, n + 1) for y in range(x + 1, n + 1)]
    for x, y in draw(st.lists(st.sampled_from(pairs), max_size=2 * n)):
        link(x, y)
    return adj


class Mesh:
    def __init__(self, adj: Adj) -> None:
        self.adj = adj
        self.routes = {name: Routes(name, adj) for name in adj}
        self.fwd = {name: Forwarder(name, MacCache()) for name in adj}

    def deliver(self, origin: int, frame: bytes) -> tuple[Counter[int], int]:
        """Capture ``frame`` at ``origin`` and run the network: (injections, copies sent)."""
        injected: Counter[int] = Counter()
        queue: deque[tuple[int, Send]] = deque(
            (origin, s) for s in self.fwd[origin].captured(frame, self.routes[origin], 0.0)
        )
        sent = 0
        while queue:
            sender, send = queue.popleft()
            sent += 1
            assert sent <= len(self.adj) ** 2, "frame loops"
            assert send.next_hop in self.adj[sender], "next hop is not a neighbour"
            at = send.next_hop
            inject, more = self.fwd[at].received(send.src, send.dst, frame, self.routes[at], 0.0)
            if inject:
                injected[at] += 1
            queue.extend((at, s) for s in more)
        return injected, sent


@settings(max_examples=150, deadline=None)
@given(adj=topologies(), data=st.data())
def test_flood_reaches_every_bridge_once(adj: Adj, data: st.DataObject) -> None:
    origin = data.draw(st.sampled_from(sorted(adj)))
    # Broadcast, multicast or a unicast MAC nobody has learned: all flood.
    dst = data.draw(st.sampled_from([BCAST, bytes.fromhex("01005e000001"), mac(200)]))
    mesh = Mesh(adj)
    injected, sent = mesh.deliver(origin, dst + mac(origin) + b"\x08\x06" + bytes(46))
    assert injected == Counter({name: 1 for name in adj if name != origin})
    assert sent == len(adj) - 1  # a spanning tree: one copy per other peer
    for name in adj:
        assert mesh.fwd[name].macs.lookup(mac(origin)) == origin


def flooded(mesh: Mesh) -> int:
    return sum(f.counters.flooded.frames for f in mesh.fwd.values())


@settings(max_examples=150, deadline=None)
@given(adj=topologies(), data=st.data())
def test_unicast_after_learning_reaches_only_the_owner(adj: Adj, data: st.DataObject) -> None:
    names = sorted(adj)
    origin = data.draw(st.sampled_from(names))
    target = data.draw(st.sampled_from([n for n in names if n != origin]))
    mesh = Mesh(adj)
    mesh.deliver(target, BCAST + mac(target) + bytes(46))  # target announces itself
    before = flooded(mesh)
    hops = len(shortest_path(adj, origin, target)) - 1
    injected, sent = mesh.deliver(origin, mac(target) + mac(origin) + bytes(48))
    assert injected == Counter({target: 1}) and sent == hops
    # The reply is not flooded either: the target learned origin's MAC from the request.
    injected, sent = mesh.deliver(target, mac(origin) + mac(target) + bytes(48))
    assert injected == Counter({origin: 1}) and sent == hops
    assert flooded(mesh) == before


def shortest_path(adj: Adj, src: int, dst: int) -> list[int]:
    prev: dict[int, int | None] = {src: None}
    todo = deque([src])
    while todo:
        cur = todo.popleft()
        for nxt in adj[cur]:
            if nxt not in prev:
                prev[nxt] = cur
                todo.append(nxt)
    path: list[int] = []
    node: int | None = dst
    while node is not None:
        path.append(node)
        node = prev[node]
    return path[::-1]
