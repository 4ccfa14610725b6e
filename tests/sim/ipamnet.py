"""An in-process network of IPAM allocators: unicasts, broadcasts and periodic gossip
between peers, partitions, restarts from what each peer persisted, resets and rmpeer.

Messages queue up and are delivered in a random order (``deliver_some``) or all at once
(``flush``); a message between peers that are partitioned (or down) when it is delivered
is lost, as a real router without a route would drop it; one sent just before its sender
stopped still arrives.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import (
    Allocator,
    AllocatorConfig,
    Consensus,
    InitMode,
    Observer,
    PersistOwned,
    PersistRing,
    Reply,
)
from weavenet.core.ipam.codec import decode_ring

UNIVERSE = CIDR.parse("10.0.0.0/22")


@dataclass
class Store:
    """What one peer persisted (the shell's LMDB, in memory)."""

    ring: bytes | None = None
    owned: dict[str, tuple[bool, list[CIDR]]] = field(default_factory=dict)


@dataclass
class Message:
    kind: str  # "unicast" | "broadcast" | "gossip"
    src: int
    dst: int
    payload: bytes


class PeerHandle:
    """One peer's view of the network: PeerView and Gossip for its allocator."""

    def __init__(self, net: IpamNet, index: int) -> None:
        self.net = net
        self.index = index

    def known_peers(self) -> dict[int, str]:
        return {
            self.net.name(j): self.net.nickname(j)
            for j in self.net.live()
            if self.net.connected(self.index, j)
        }

    def is_reachable(self, name: int) -> bool:
        return self.net.connected(self.index, self.net.index_of(name))

    def gossip_unicast(self, dst: int, msg: bytes, now: float) -> bool:
        j = self.net.index_of(dst)
        if not self.net.connected(self.index, j):
            return False
        self.net.queue.append(Message("unicast", self.index, j, msg))
        return True

    def gossip_broadcast(self, update: object, now: float) -> None:
        payloads = update.encode()  # type: ignore[attr-defined]
        for j in self.net.live():
            if j != self.index and self.net.connected(self.index, j):
                for payload in payloads:
                    self.net.queue.append(Message("broadcast", self.index, j, payload))

    def gossip_neighbour_subset(self, update: object, now: float) -> None:
        self.gossip_broadcast(update, now)


class IpamNet:
    def __init__(
        self,
        n: int,
        seed: int,
        init: InitMode | None = None,
        universe: CIDR = UNIVERSE,
        observers: frozenset[int] = frozenset(),
        init_of: dict[int, InitMode] | None = None,
        base: int = 0x0A0000000000,
        nicknames: tuple[str, ...] = (),
    ) -> None:
        self.n = n
        self.base = base  # peer i is named base + i + 1
        self.nicknames = nicknames
        self.init_of = dict(init_of or {})
        for i in observers:
            self.init_of[i] = Observer()
        self.rng = random.Random(seed)
        self.init = init if init is not None else Consensus(n // 2 + 1)
        self.universe = universe
        self.now = 1_000_000.0
        self.stores = [Store() for _ in range(n)]
        self.allocs: list[Allocator | None] = [None] * n
        self.groups = [0] * n  # peers talk only within their group
        self.gone: set[int] = set()  # reset or removed for good: never back
        self.queue: list[Message] = []
        self.replies: dict[int, Reply] = {}
        self.errors: list[str] = []
        self._reqs = itertools.count(1)
        self._uids = itertools.count(100)
        for i in range(n):
            self.start(i)

    # --- identity ----------------------------------------------------------------------

    def name(self, i: int) -> int:
        return self.base + i + 1

    def index_of(self, name: int) -> int:
        return name - self.base - 1

    def nickname(self, i: int) -> str:
        return self.nicknames[i] if i < len(self.nicknames) else f"p{i}"

    def live(self) -> list[int]:
        return [i for i in range(self.n) if self.allocs[i] is not None]

    def connected(self, i: int, j: int) -> bool:
        if not (0 <= j < self.n) or self.allocs[i] is None or self.allocs[j] is None:
            return False
        return self.groups[i] == self.groups[j]

    def alloc(self, i: int) -> Allocator:
        a = self.allocs[i]
        assert a is not None, f"peer {i} is down"
        return a

    # --- life cycle --------------------------------------------------------------------

    def config(self, i: int) -> AllocatorConfig:
        return AllocatorConfig(
            name=self.name(i),
            uid=next(self._uids),
            nickname=self.nickname(i),
            universe=self.universe,
            default_subnet=self.universe,
            init=self.init_of.get(i, self.init),
        )

    def start(self, i: int) -> None:
        handle = PeerHandle(self, i)
        alloc = Allocator(self.config(i), handle, random.Random(self.rng.random()), self.now)
        alloc.attach_gossip(handle)
        self.allocs[i] = alloc
        store = self.stores[i]
        alloc.restore(store.ring, {k: (c, list(v)) for k, (c, v) in store.owned.items()}, self.now)
        self.apply(i)

    def stop(self, i: int) -> None:
        self.allocs[i] = None

    def reset(self, i: int) -> None:
        """weave reset: hand our ranges over, then leave for good (store deleted)."""
        self.alloc(i).shutdown(self.now)
        self.apply(i)
        self.stop(i)
        self.stores[i] = Store()
        self.gone.add(i)

    def rmpeer(self, by: int, victim: int) -> int:
        """The victim (down) is gone for good; ``by`` takes over its ranges."""
        assert self.allocs[victim] is None
        self.gone.add(victim)
        self.stores[victim] = Store()
        taken = self.alloc(by).admin_takeover(self.nickname(victim), self.now)
        self.apply(by)
        return taken

    # --- effects -----------------------------------------------------------------------

    def apply(self, i: int) -> None:
        alloc = self.allocs[i]
        if alloc is None:
            return
        store = self.stores[i]
        for effect in alloc.take_effects():
            if isinstance(effect, PersistRing):
                store.ring = effect.data
            elif isinstance(effect, PersistOwned):
                if effect.cidrs:
                    store.owned[effect.ident] = (effect.is_container, list(effect.cidrs))
                else:
                    store.owned.pop(effect.ident, None)
            else:
                self.replies[effect.req] = effect

    # --- requests ----------------------------------------------------------------------

    def request(self) -> int:
        return next(self._reqs)

    def allocate(self, i: int, ident: str, subnet: CIDR | None = None) -> int:
        req = self.request()
        self.alloc(i).allocate(req, ident, subnet or self.universe, self.now)
        self.apply(i)
        return req

    def claim(self, i: int, ident: str, cidr: CIDR, no_error_on_unknown: bool = False) -> int:
        req = self.request()
        self.alloc(i).claim(req, ident, cidr, no_error_on_unknown, self.now)
        self.apply(i)
        return req

    # --- delivery ----------------------------------------------------------------------

    def deliver(self, msg: Message) -> None:
        if self.allocs[msg.dst] is None or self.groups[msg.src] != self.groups[msg.dst]:
            return  # no route any more: lost (a message from a peer since stopped still arrives)
        alloc = self.alloc(msg.dst)
        src = self.name(msg.src)
        try:
            if msg.kind == "unicast":
                alloc.on_gossip_unicast(src, msg.payload, self.now)
            elif msg.kind == "broadcast":
                alloc.on_gossip_broadcast(src, msg.payload, self.now)
            else:
                alloc.on_gossip(msg.payload, self.now)
        except RemoteProtocolError as err:
            self.errors.append(f"{msg.kind} p{msg.src}->p{msg.dst}: {err}")
        self.apply(msg.dst)

    def deliver_some(self, count: int) -> None:
        for _ in range(min(count, len(self.queue))):
            self.deliver(self.queue.pop(self.rng.randrange(len(self.queue))))

    def drain(self, limit: int = 100_000) -> None:
        for _ in range(limit):
            if not self.queue:
                return
            self.deliver(self.queue.pop(0))
        raise AssertionError("messages keep coming")

    def periodic_gossip(self) -> None:
        for i in self.live():
            data = self.alloc(i).gossip(self.now)
            self.apply(i)
            if data is None:
                continue
            for j in self.live():
                if j != i and self.connected(i, j):
                    for payload in data.encode():
                        self.queue.append(Message("gossip", i, j, payload))

    def advance(self, seconds: float) -> None:
        """Move the clock on and fire every timer that is due."""
        self.now += seconds
        for i in self.live():
            alloc = self.alloc(i)
            if alloc.next_wakeup() <= self.now:
                alloc.tick(self.now)
                self.apply(i)

    def flush(self, rounds: int = 6) -> None:
        """Messages flow freely: gossip, deliver everything, let timers fire."""
        for _ in range(rounds):
            self.drain()
            self.periodic_gossip()
            self.drain()
            self.advance(5.0)
        self.drain()

    def heal(self) -> None:
        self.groups = [0] * self.n

    def partition(self, groups: list[int]) -> None:
        self.groups = list(groups)

    # --- observations ------------------------------------------------------------------

    def holdings(self) -> dict[int, list[tuple[int, str]]]:
        """Address -> (peer, ident) holding it: live peers and peers down but coming back."""
        held: dict[int, list[tuple[int, str]]] = {}
        for i in range(self.n):
            if i in self.gone:
                continue
            a = self.allocs[i]
            owned = (
                a.owned() if a is not None else {k: v for k, (_, v) in self.stores[i].owned.items()}
            )
            for ident, cidrs in owned.items():
                for cidr in cidrs:
                    held.setdefault(cidr.addr, []).append((i, ident))
        return held

    def ring_entries(self, i: int) -> tuple[tuple[int, int, int, int], ...]:
        """Peer i's ring as (token, size, owner, version) per range."""
        status = self.alloc(i).status(self.now)
        return tuple((e.token, e.size, e.peer, e.version) for e in status.entries)

    def owner_in_own_ring(self, i: int, addr: int) -> int | None:
        for token, size, peer, _ in self.ring_entries(i):
            if token <= addr < token + size:
                return peer
        return None

    def reloaded(self, i: int) -> Allocator:
        """A fresh allocator restored from what peer i persisted."""
        handle = PeerHandle(self, i)
        fresh = Allocator(self.config(i), handle, random.Random(0), self.now)
        store = self.stores[i]
        fresh.restore(store.ring, {k: (c, list(v)) for k, (c, v) in store.owned.items()}, self.now)
        fresh.take_effects()
        return fresh


def check_invariants(net: IpamNet) -> None:
    """No address held twice; every held address inside space its peer owns."""
    for addr, holders in net.holdings().items():
        assert len(holders) == 1, f"address {addr:#x} held by {holders}"
    for i in net.live():
        for cidrs in net.alloc(i).owned().values():
            for cidr in cidrs:
                if net.universe.range().contains(cidr.addr):
                    owner = net.owner_in_own_ring(i, cidr.addr)
                    assert owner == net.name(i), f"p{i} holds {cidr} owned by {owner}"


def check_reload(net: IpamNet, i: int) -> None:
    """What peer i persisted restores to the ring and addresses it has now."""
    fresh = net.reloaded(i)
    reloaded = tuple((e.token, e.size, e.peer, e.version) for e in fresh.status(net.now).entries)
    assert reloaded == net.ring_entries(i)
    assert fresh.owned() == net.alloc(i).owned()


def persisted_ring(net: IpamNet, i: int) -> tuple[object, ...] | None:
    """Peer i's persisted ring as a comparable value (without the copy's owner)."""
    data = net.stores[i].ring
    return None if data is None else decode_ring(data).canonical()
