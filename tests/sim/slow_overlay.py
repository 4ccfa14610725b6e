"""An overlay whose connections take a while to establish, as fastdp's do (its first
heartbeats must cross the kernel path both ways): for simulations of a forming mesh."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any

from tests.sim.simnet import SimNet
from weavenet.core.mesh.overlay import OverlayConnection, OverlayParams


@dataclass
class SlowConnection:
    delay: float
    established: bool = False
    error: str | None = None
    ready_at: float = float("inf")

    def confirm(self, now: float) -> None:
        self.ready_at = min(self.ready_at, now + self.delay)

    def control_message(self, tag: int, payload: bytes, now: float) -> None:
        return None

    def take_control_messages(self) -> list[tuple[int, bytes]]:
        return []

    def peer_heard(self, now: float) -> None:
        return None

    def tick(self, now: float) -> float:
        if now >= self.ready_at:
            self.established = True
            return float("inf")
        return self.ready_at

    def attrs(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        return None


class SlowOverlay:
    """Each connection establishes ``low``..``high`` seconds after the mesh confirms it."""

    def __init__(self, rng: random.Random, low: float, high: float) -> None:
        self.rng, self.low, self.high = rng, low, high

    def add_features(self, features: dict[str, str]) -> None:
        return None

    def prepare_connection(self, params: OverlayParams) -> OverlayConnection:
        return SlowConnection(self.rng.uniform(self.low, self.high))

    def diagnostics(self) -> dict[str, Any]:
        return {}


def slow_chain(n: int, seed: int, spread: float) -> SimNet:
    """``n`` routers whose overlays take 0.3-1.5 s, chain-started over ``spread`` seconds
    (router k given only router k-1)."""
    net = SimNet(n, seed, max_delay=0.02, overlay=lambda i: SlowOverlay(random.Random(i), 0.3, 1.5))
    for k in range(1, n):
        net.at(spread * k / n, functools.partial(net.connect, k, [k - 1]))
    return net


def full_view(net: SimNet, n: int) -> bool:
    """Every router sees every peer with n-1 established connections."""
    for router in net.routers:
        peers = list(router.peers)
        if len(peers) < n:
            return False
        if any(sum(c.established for c in p.connections.values()) != n - 1 for p in peers):
            return False
    return True


def run_to_full_view(net: SimNet, n: int, spread: float, limit: float = 60.0) -> float:
    """Advance until the chain is all launched and every router has the full view."""
    while not (net.now > spread and full_view(net, n)):
        assert net.now < limit, "the chain-started mesh did not converge"
        net.run_for(0.1)
    return net.now


def route_seen(net: SimNet, k: int) -> bool:
    """Whether some other router sees an established connection in router k's entry:
    from then on someone has a route to k."""
    name = net.routers[k].name
    for j, other in enumerate(net.routers):
        entry = other.peers.get(name) if j != k else None
        if entry is not None and any(c.established for c in entry.connections.values()):
            return True
    return False


class RouteLags:
    """Per router, from its first established connection until another router sees one
    in its entry; ``observe`` after every step of the simulation."""

    def __init__(self) -> None:
        self.established: dict[int, float] = {}
        self.seen: dict[int, float] = {}

    def observe(self, net: SimNet) -> None:
        for k, router in enumerate(net.routers):
            if k not in self.established and router.peers.routable():
                self.established[k] = net.now
            if k in self.established and k not in self.seen and route_seen(net, k):
                self.seen[k] = net.now

    def lags(self) -> list[float]:
        """One per router that had an established connection (inf: never seen)."""
        return [self.seen.get(k, float("inf")) - t for k, t in self.established.items()]
