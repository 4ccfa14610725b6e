"""Measurements for the scaling simulation: a sparse mesh of router cores, its
convergence, the memory each router retains, and the topology gossip one change costs.

The mesh: discovery off, router k connects to router k-1 and to ``CHORDS`` random earlier
routers, so every router has a handful of connections whatever N is (about 2 + 2 x
CHORDS) and the graph's diameter grows like log N. A sparse mesh, because in a full mesh
the topology itself is N (N - 1) connections: every router must hold Θ(N²) state and each
join changes every entry, whatever the implementation. Bounded degree isolates what the
implementation adds on top of the information it must hold and spread.
"""

from __future__ import annotations

import gc
import logging
import math
import random
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from tests.sim.simnet import SimNet
from weavenet.core.mesh.protocol import Tag, decode_gossip
from weavenet.core.mesh.topology_gossip import TOPOLOGY_CHANNEL
from weavenet.core.wire.framing import FrameDecoder

CHORDS = 1
GOSSIP_TAGS = (Tag.GOSSIP, Tag.GOSSIP_UNICAST, Tag.GOSSIP_BROADCAST)


def sparse_mesh(n: int, seed: int, spare: int = 0) -> SimNet:
    """``n`` routers connected as above, plus ``spare`` routers left unconnected (to join
    later)."""
    net = SimNet(n + spare, seed, discovery=False, max_delay=0.02)
    rng = random.Random(seed)
    for k in range(1, n):
        net.connect(k, sorted({k - 1} | {rng.randrange(k) for _ in range(CHORDS)}))
    return net


def converged(net: SimNet, members: Iterable[int]) -> bool:
    """Every member knows every member, and its routes reach all of them."""
    indices = list(members)
    names = {net.routers[i].name for i in indices}
    for i in indices:
        router = net.routers[i]
        if not names <= set(router.known_peers()):
            return False
        if not names <= set(router.fresh_routes().unicast):
            return False
    return True


def run_until_converged(net: SimNet, members: Iterable[int], limit: float) -> bool:
    """Advance until :func:`converged`, checking every 50 ms of simulated time (checking
    after every event would cost more than the simulation)."""
    indices = list(members)
    deadline = net.now + limit
    while net.now < deadline:
        net.run_for(0.05)
        if converged(net, indices):
            return True
    return converged(net, indices)


@dataclass
class GossipMeter:
    """Counts the topology gossip bytes (framed messages) every router sends."""

    bytes_sent: int = 0
    messages: int = 0
    last_at: float | None = None  # when the latest one was sent (None: none yet)
    net: SimNet | None = field(default=None, repr=False)

    def attach(self, net: SimNet) -> GossipMeter:
        """Count ``net``'s sends from now on (now counts as the latest, for quiet)."""
        self.net = net
        self.last_at = net.now
        net.meter = self.sent
        return self

    def sent(self, router: int, data: bytes) -> None:
        decoder = FrameDecoder()
        for body in decoder.feed(data):
            if body and body[0] in GOSSIP_TAGS:
                msg = decode_gossip(Tag(body[0]), body[1:])
                if msg.channel == TOPOLOGY_CHANNEL:
                    self.bytes_sent += len(body) + 4
                    self.messages += 1
                    assert self.net is not None
                    self.last_at = self.net.now
        assert decoder.buffered == 0, "a send ended inside a frame"

    def reset(self) -> None:
        """Start counting a change: zero, and no gossip seen since."""
        self.bytes_sent = self.messages = 0
        self.last_at = None


def run_until_quiet(net: SimNet, meter: GossipMeter, quiet: float, limit: float) -> bool:
    """Advance until topology gossip has been sent since the meter's reset and then
    none for ``quiet`` simulated seconds."""
    deadline = net.now + limit
    while net.now < deadline:
        net.run_for(0.25)
        if meter.last_at is not None and net.now - meter.last_at >= quiet:
            return True
    return False


# ---- memory ------------------------------------------------------------------------
_SHARED_TYPES = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.CodeType,
    types.MethodType,  # its __self__ is reachable anyway; its function is shared
    logging.Logger,
    Enum,
)


def retained_size(roots: Iterable[object]) -> int:
    """Bytes of every object reachable from ``roots`` (each counted once), leaving out
    what all routers share: classes, modules, functions, loggers, enum members."""
    seen: set[int] = set()
    stack = list(roots)
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SHARED_TYPES):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def memory_per_router(net: SimNet, sample: int, rng: random.Random) -> float:
    """Average retained size of ``sample`` routers picked at random."""
    picked = rng.sample(net.routers, min(sample, len(net.routers)))
    return retained_size(picked) / len(picked)


# ---- fitting -----------------------------------------------------------------------
def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x: the exponent k of y ~ x^k."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    cov = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
    var = sum((a - mx) ** 2 for a in lx)
    return cov / var
