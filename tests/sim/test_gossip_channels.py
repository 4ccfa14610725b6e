"""Gossip channels through the public API (contract A): Router.new_gossip and its handle,
surrogates for unknown channels, on_peer_gone, known_peers and is_reachable."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import pytest

from tests.sim.simnet import SimNet
from tests.sim.test_convergence import chain
from weavenet.core.effects import Send
from weavenet.core.errors import RemoteProtocolError
from weavenet.core.mesh.gossip import BytesGossipData, Gossip, GossipData
from weavenet.core.mesh.router import GC_DELAY, GC_GRACE


@dataclass
class Recorder:
    """A channel owner that remembers what reached it: (kind, src, payload, now)."""

    relay: bool = True  # pass broadcasts on, as an owner does with news
    fail_from: int | None = None  # raise RemoteProtocolError on anything from this peer
    seen: list[tuple[str, int | None, bytes, float]] = field(default_factory=list)

    def _check(self, src: int | None) -> None:
        if src is not None and src == self.fail_from:
            raise RemoteProtocolError(f"bad gossip from {src}")

    def on_gossip_unicast(self, src: int, msg: bytes, now: float) -> None:
        self._check(src)
        self.seen.append(("unicast", src, msg, now))

    def on_gossip_broadcast(self, src: int, update: bytes, now: float) -> GossipData | None:
        self._check(src)
        self.seen.append(("broadcast", src, update, now))
        return BytesGossipData([update]) if self.relay else None

    def gossip(self, now: float) -> GossipData | None:
        return None

    def on_gossip(self, msg: bytes, now: float) -> GossipData | None:
        self.seen.append(("gossip", None, msg, now))
        return None


def _own(net: SimNet, channel: str) -> tuple[list[Recorder], list[Gossip]]:
    recorders = [Recorder() for _ in net.routers]
    handles = [r.new_gossip(channel, rec) for r, rec in zip(net.routers, recorders, strict=True)]
    return recorders, handles


def test_new_gossip_twice_is_refused() -> None:
    net = SimNet(1, 1)
    net.routers[0].new_gossip("IPallocation", Recorder())
    with pytest.raises(ValueError, match="duplicate channel IPallocation"):
        net.routers[0].new_gossip("IPallocation", Recorder())
    with pytest.raises(ValueError, match="duplicate channel topology"):
        net.routers[0].new_gossip("topology", Recorder())


def test_unicast_through_the_handle_reaches_a_peer_two_hops_away() -> None:
    net = chain(3)
    recorders, handles = _own(net, "test")
    first, last = net.routers[0], net.routers[2]
    assert handles[0].gossip_unicast(last.name, b"hello", net.now)
    net.flush(0)
    assert net.run_until(lambda: bool(recorders[2].seen), limit=5)
    assert [s[:3] for s in recorders[2].seen] == [("unicast", first.name, b"hello")]
    assert recorders[1].seen == [] and recorders[0].seen == []  # the middle only relays


def test_unicast_without_a_route_returns_false() -> None:
    net = chain(2)
    _, handles = _own(net, "test")
    assert not handles[0].gossip_unicast(0x99, b"lost", net.now)


@pytest.mark.parametrize("discovery", [False, True], ids=["tree", "full-mesh"])
def test_broadcast_through_the_handle_reaches_every_router_exactly_once(discovery: bool) -> None:
    n = 6
    net = SimNet(n, 5, discovery=discovery)
    rng = random.Random(5)
    for i in range(1, n):
        net.connect(i, [rng.randrange(i)])
    expected = n * (n - 1) if discovery else 2 * (n - 1)
    assert net.run_until(lambda: sum(net.established_counts()) == expected, limit=120)
    net.run_for(5)  # let every router learn the whole topology
    recorders, handles = _own(net, "test")
    src = net.routers[0].name
    handles[0].gossip_broadcast(BytesGossipData([b"news"]), net.now)
    net.flush(0)
    net.run_for(5)
    assert recorders[0].seen == []
    for rec in recorders[1:]:
        assert [s[:3] for s in rec.seen] == [("broadcast", src, b"news")]


def test_neighbour_subset_reaches_the_neighbours_as_gossip() -> None:
    net = chain(3)
    recorders, handles = _own(net, "test")
    handles[1].gossip_neighbour_subset(BytesGossipData([b"delta"]), net.now)
    net.flush(1)
    assert net.run_until(lambda: bool(recorders[0].seen and recorders[2].seen), limit=5)
    for rec in (recorders[0], recorders[2]):
        assert [s[:3] for s in rec.seen] == [("gossip", None, b"delta")]
    assert recorders[1].seen == []


def test_callbacks_get_now() -> None:
    net = chain(2)
    recorders, handles = _own(net, "test")
    handles[0].gossip_unicast(net.routers[1].name, b"x", net.now)
    net.flush(0)
    assert net.run_until(lambda: bool(recorders[1].seen), limit=5)
    assert recorders[1].seen[0][3] == net.now  # delivered at the instant the sim stopped


def test_surrogate_relays_then_is_replaced_by_the_owner(caplog: pytest.LogCaptureFixture) -> None:
    net = chain(3)
    ends = [Recorder(), Recorder()]
    sender = net.routers[0].new_gossip("nameserver", ends[0])
    net.routers[2].new_gossip("nameserver", ends[1])
    with caplog.at_level(logging.INFO, logger="weavenet.mesh"):
        sender.gossip_broadcast(BytesGossipData([b"entry"]), net.now)
        net.flush(0)
        assert net.run_until(lambda: bool(ends[1].seen), limit=5)
    # the middle router knew nothing of the channel, yet passed it on
    assert [s[:3] for s in ends[1].seen] == [("broadcast", net.routers[0].name, b"entry")]
    assert "created surrogate channel nameserver" in caplog.text
    owner = Recorder()
    net.routers[1].new_gossip("nameserver", owner)  # replaces the surrogate: no ValueError
    sender.gossip_broadcast(BytesGossipData([b"later"]), net.now)
    net.flush(0)
    assert net.run_until(lambda: len(ends[1].seen) == 2, limit=5)
    assert [s[:3] for s in owner.seen] == [("broadcast", net.routers[0].name, b"later")]


def test_a_gossiper_error_closes_only_that_connection(caplog: pytest.LogCaptureFixture) -> None:
    net = chain(3)
    r0, r1, r2 = net.routers
    recorders, handles = _own(net, "test")
    recorders[1].fail_from = r0.name
    handles[0].gossip_broadcast(BytesGossipData([b"bad"]), net.now)
    net.flush(0)
    with caplog.at_level(logging.INFO, logger="weavenet.mesh"):
        assert net.run_until(lambda: r0.name not in r1.by_peer, limit=5)
    why = f"bad gossip from {r0.name}"
    [line] = [r.getMessage() for r in caplog.records if why in r.getMessage()]  # one line
    assert "connection shutting down due to error" in line
    assert r2.name in r1.by_peer  # the other connection stays
    assert recorders[2].seen == []  # what failed was not relayed
    handles[2].gossip_broadcast(BytesGossipData([b"good"]), net.now)
    net.flush(2)
    assert net.run_until(lambda: bool(recorders[1].seen), limit=5)
    assert [s[:3] for s in recorders[1].seen] == [("broadcast", r2.name, b"good")]


def test_on_peer_gone_fires_with_name_and_now_at_gc() -> None:
    net = chain(2)
    gone: list[tuple[int, float, float]] = []
    net.routers[0].on_peer_gone(lambda name, now: gone.append((name, now, net.now)))
    conn_id = next(iter(net.routers[0].by_peer.values())).id
    net.unreachable.add(1)  # r1 departs: it never comes back
    net.routers[1].forget([net.address(0)], net.now)
    closed_at = net.now
    net.routers[0].connection_closed(conn_id, "test", net.now)
    net.flush(0)
    assert net.run_until(lambda: bool(gone), limit=GC_DELAY + GC_GRACE + 1)
    [(name, now, sim_now)] = gone
    assert name == net.routers[1].name
    assert now == sim_now and now >= closed_at + GC_GRACE  # at GC time, held until then


def test_a_peer_back_within_the_gc_grace_is_never_collected() -> None:
    net = chain(2)
    gone: list[int] = []
    net.routers[0].on_peer_gone(lambda name, now: gone.append(name))
    conn_id = next(iter(net.routers[0].by_peer.values())).id
    net.routers[0].connection_closed(conn_id, "test", net.now)  # r1 redials at once
    net.flush(0)
    r0, r1 = net.routers
    assert net.run_until(lambda: not r0.is_reachable(r1.name), limit=5)
    assert net.run_until(lambda: r0.is_reachable(r1.name), limit=GC_GRACE)
    net.run_for(2 * GC_GRACE)
    assert gone == [] and r1.name in r0.known_peers()


def test_known_peers_and_is_reachable() -> None:
    net = chain(3)
    r0, r1, r2 = net.routers
    assert r0.known_peers() == {r.name: r.config.nickname for r in net.routers}
    assert r0.is_reachable(r0.name) and r0.is_reachable(r2.name)
    assert not r0.is_reachable(0x99)
    r2.forget([net.address(1)], net.now)  # r2 dialled r1: it must not dial again
    conn_id = r1.by_peer[r2.name].id
    r1.connection_closed(conn_id, "test", net.now)
    net.flush(1)
    assert net.run_until(lambda: not r0.is_reachable(r2.name), limit=30)
    assert r0.is_reachable(r1.name)


def test_gossip_held_while_a_connection_was_paused_goes_when_it_resumes() -> None:
    # the kernel buffer of a busy connection fills (a 50-router topology is ~60 KB): the
    # shell pauses it; gossip queued meanwhile must go at the resume, not wait for some
    # unrelated message to touch the connection
    net = chain(2)
    recorders, handles = _own(net, "test")
    conn_id = next(iter(net.routers[0].by_peer.values())).id
    net.routers[0].set_writable(conn_id, False)
    handles[0].gossip_neighbour_subset(BytesGossipData([b"held"]), net.now)
    net.flush(0)
    net.run_for(1)
    assert recorders[1].seen == []
    net.routers[0].set_writable(conn_id, True)
    sends = [e for e in net.routers[0].take_effects(net.now) if isinstance(e, Send)]
    assert [e.conn for e in sends] == [conn_id]  # at once, not at the next sweep
