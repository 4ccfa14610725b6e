"""GET /status from the status report prints what rendering the full report printed, on
every router of a simulated mesh at every moment of its convergence: while connections
are pending, targets refused or being retried, and after a router restarts."""

from __future__ import annotations

import asyncio
import random

from tests.sim.simnet import SimNet
from tests.sim.slow_overlay import SlowOverlay
from weavenet.api.status_text import render_status, render_status_report
from weavenet.core.mesh.router import Router
from weavenet.io.mesh_tcp import MeshShell

N = 10
DEAD = N - 1  # never joins: dials to it are refused, so its target fails


class Watch:
    """Compares the two renderings on every router at each step of the simulation."""

    def __init__(self, net: SimNet) -> None:
        self.net = net
        self.checks = 0
        self.seen: set[tuple[str, str]] = set()  # (label, value) lines: what was covered

    def compare(self) -> bool:
        for router in self.net.routers:
            shell = MeshShell(router, "", 0, lambda targets: None)
            full = render_status(shell.report(routes=False))
            assert render_status_report(shell.status_report()) == full
            self.checks += 1
            lines = (line.split(": ", 1) for line in full.splitlines() if ": " in line)
            self.seen.update((label.strip(), value) for label, value in lines)
        return False  # keep the simulation running

    def covered(self, label: str, fragment: str) -> bool:
        return any(seen == label and fragment in value for seen, value in self.seen)


def converged(net: SimNet) -> bool:
    live = [r for i, r in enumerate(net.routers) if i != DEAD]
    return all(len(r.peers) == N - 1 and _all_established(r) for r in live)


def _all_established(router: Router) -> bool:
    return all(c.established for peer in router.peers for c in peer.connections.values())


async def scenario() -> Watch:
    # connections establish 0.3-1.5 s after the handshake (as fastdp's): pending till then
    net = SimNet(N, 5, drop=0.03, overlay=lambda i: SlowOverlay(random.Random(i), 0.3, 1.5))
    net.unreachable.add(DEAD)
    watch = Watch(net)
    rng = random.Random(5)
    for i in range(1, DEAD):
        net.connect(i, [rng.randrange(i), DEAD])
    net.run_until(lambda: watch.compare() or converged(net), limit=120)
    assert converged(net)
    net.restart(3, seed=99)  # a new incarnation: its peers redial it
    net.connect(3, [0])
    net.run_until(lambda: watch.compare() or converged(net), limit=120)
    assert converged(net)
    return watch


def test_status_report_renders_as_the_full_report_throughout_convergence() -> None:
    watch = asyncio.run(scenario())  # MeshShell wants a running loop; the net is simulated
    assert watch.checks > 1000
    for label, fragment in [
        ("Connections", " pending"),
        ("Connections", " failed"),
        ("Connections", " connecting"),
        ("Peers", " pending connections)"),
        ("Peers", f"{N - 1} (with {(N - 1) * (N - 2)} established connections)"),
    ]:
        assert watch.covered(label, fragment), (label, fragment, sorted(watch.seen))
