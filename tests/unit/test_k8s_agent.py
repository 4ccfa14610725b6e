"""The agent's reclaim round against an in-memory API server (optimistic concurrency, as the
real one) and in-memory routers sharing one ring: two agents seeing a deletion at the same
moment reclaim it exactly once; a repeat is a no-op; a reachable peer is never taken over.
(The real cluster runs the same in tests/k8s.)"""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass, field
from typing import Any

from weavenet.core.kube.reclaim import LeaseView, NodeView
from weavenet.k8s.agent import Agent, AgentConfig
from weavenet.k8s.kube import Conflict, Stored


@dataclass
class FakeApi:
    """ConfigMap and Lease with resource versions; every call yields to the event loop."""

    config: Stored | None = None
    lease: tuple[LeaseView, int] | None = None
    version: int = 0
    now: float = 1000.0

    def bump(self) -> int:
        self.version += 1
        return self.version


@dataclass
class FakeKube:
    api: FakeApi

    async def read_config(self) -> Stored:
        await asyncio.sleep(0)
        if self.api.config is None:
            return Stored({}, None)
        return copy.deepcopy(self.api.config)

    async def write_config(self, stored: Stored) -> None:
        await asyncio.sleep(0)
        current = self.api.config.version if self.api.config else None
        if stored.version != current:
            raise Conflict("weave-net")
        self.api.config = Stored(dict(stored.data), str(self.api.bump()))

    async def read_lease(self) -> tuple[LeaseView | None, Any]:
        await asyncio.sleep(0)
        if self.api.lease is None:
            return None, None
        return self.api.lease[0], self.api.lease[1]

    async def take_lease(self, me: str, duration: int, current: Any) -> None:
        await asyncio.sleep(0)
        stored = self.api.lease[1] if self.api.lease else None
        if current != stored:
            raise Conflict("weave-net-reclaim")
        self.api.lease = (LeaseView(me, self.api.now, duration), self.api.bump())


@dataclass
class Ring:
    owners: dict[str, str] = field(default_factory=dict)  # range token -> peer
    reachable: set[str] = field(default_factory=set)
    takeovers: list[tuple[str, str]] = field(default_factory=list)  # (by, from)


class FakeRouter:
    def __init__(self, ring: Ring, me: str) -> None:
        self.ring, self.me = ring, me

    async def ring_owners(self) -> dict[str, bool]:
        await asyncio.sleep(0)
        return {p: p in self.ring.reachable for p in self.ring.owners.values()}

    async def rmpeer(self, peer: str) -> str:
        await asyncio.sleep(0)
        self.ring.takeovers.append((self.me, peer))
        for token, owner in list(self.ring.owners.items()):
            if owner == peer:
                self.ring.owners[token] = self.me
        return f"taken over from {peer}"


def make_agent(name: str, peer: str, ring: Ring, nodes: dict[str, NodeView]) -> Agent:
    agent = Agent(AgentConfig(node_name=name, metrics_addr=""))
    agent.router = FakeRouter(ring, peer)  # type: ignore[assignment]
    agent.peer = peer
    agent.nodes = dict(nodes)
    return agent


def cluster_after_deletion() -> tuple[Ring, list[Agent]]:
    ring = Ring({"10.32.0.0": "p1", "10.40.0.0": "p2", "10.44.0.0": "p3"}, {"p1", "p2"})
    nodes = {"n1": NodeView("n1", "192.0.2.1", "p1"), "n2": NodeView("n2", "192.0.2.2", "p2")}
    return ring, [make_agent("n1", "p1", ring, nodes), make_agent("n2", "p2", ring, nodes)]


def test_two_agents_seeing_the_deletion_at_once_reclaim_it_once() -> None:
    ring, agents = cluster_after_deletion()
    api = FakeApi()

    async def both() -> None:
        await asyncio.gather(*(a.reclaim(FakeKube(api)) for a in agents))  # type: ignore[arg-type]

    asyncio.run(both())
    assert len(ring.takeovers) == 1
    heir = ring.takeovers[0][0]
    assert ring.owners["10.44.0.0"] == heir
    assert api.config is not None and api.config.data["reclaimed"] == "p3"
    assert api.lease is not None and api.lease[0].holder == {"p1": "n1", "p2": "n2"}[heir]


def test_a_later_round_does_nothing() -> None:
    ring, agents = cluster_after_deletion()
    api = FakeApi()

    async def rounds() -> None:
        for _ in range(3):
            for agent in agents:
                await agent.reclaim(FakeKube(api))  # type: ignore[arg-type]

    asyncio.run(rounds())
    assert len(ring.takeovers) == 1


def test_a_live_holder_of_the_lease_is_waited_for() -> None:
    ring, agents = cluster_after_deletion()
    api = FakeApi(lease=(LeaseView("n2", time.time(), 15), 7))  # n2 holds it, renewed now
    asyncio.run(agents[0].reclaim(FakeKube(api)))  # type: ignore[arg-type]
    assert ring.takeovers == []


def test_a_reachable_peer_without_a_node_is_not_taken_over() -> None:
    ring, agents = cluster_after_deletion()
    ring.reachable.add("p3")
    asyncio.run(agents[0].reclaim(FakeKube(FakeApi())))  # type: ignore[arg-type]
    assert ring.takeovers == []
