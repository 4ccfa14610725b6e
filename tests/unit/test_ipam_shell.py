"""The IPAM shell over a scripted allocator and a real LMDB store: one commit per batch,
persistence before answers, cancellation, failures, restore, and the shared timer."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import lmdb
import pytest

from weavenet.api.control import IpamCancelled, IpamRequestFailed
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import (
    IpamEffect,
    IpamError,
    IpamStatus,
    PersistOwned,
    PersistRing,
    Reply,
)
from weavenet.core.mesh.router import Router, RouterConfig
from weavenet.io.ipam_shell import IpamShell, SendWatch, coalesce
from weavenet.io.mesh_tcp import MeshShell
from weavenet.io.store import Store

T = TypeVar("T")
SUBNET = CIDR.parse("10.32.0.0/12")


class ScriptedAllocator:
    """Answers allocations at once when ``ready``, else holds them; records every call."""

    def __init__(self) -> None:
        self.ready = True
        self.effects: list[IpamEffect] = []
        self.held: dict[int, str] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.wakeup = float("inf")
        self.next_addr = SUBNET.addr + 1

    def _grant(self, req: int, ident: str) -> None:
        cidr = CIDR(self.next_addr, SUBNET.prefix_len)
        self.next_addr += 1
        self.effects += [PersistOwned(ident, False, (cidr,)), Reply(req, cidr, None)]

    def allocate(self, req: int, ident: str, subnet: CIDR, now: float) -> None:
        self.calls.append(("allocate", req, ident))
        if ident == "refused":
            self.effects.append(Reply(req, None, "range 1.2.3.0/24 out of bounds: 10.32.0.0/12"))
        elif ident == "invalid":
            raise IpamError("bad request")
        elif self.ready:
            self._grant(req, ident)
        else:
            self.held[req] = ident

    def release_held(self) -> None:
        for req, ident in self.held.items():
            self._grant(req, ident)
        self.held.clear()

    def claim(self, req: int, ident: str, cidr: CIDR, no_error: bool, now: float) -> None:
        self.effects += [PersistOwned(ident, False, (cidr,)), Reply(req, None, None)]

    def prime(self, req: int, now: float) -> None:
        self.effects += [PersistRing(b"ring-bytes"), Reply(req, None, None)]

    def cancel(self, req: int, now: float) -> None:
        self.calls.append(("cancel", req))
        if self.held.pop(req, None) is not None:
            self.effects.append(Reply(req, None, "cancelled"))

    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]:
        return []

    def owned(self) -> dict[str, list[CIDR]]:
        return {}

    def free(self, ident: str, addr: int, now: float) -> None:
        self.effects.append(PersistOwned(ident, False, ()))

    def delete(self, ident: str, now: float) -> None:
        raise IpamError(f"Delete: no addresses for {ident}")

    def shutdown(self, now: float) -> None:
        self.effects.append(PersistRing(None))

    def admin_takeover(self, peer: str, now: float) -> int:
        return 7

    def tick(self, now: float) -> None:
        self.calls.append(("tick",))
        self.wakeup = float("inf")

    def next_wakeup(self) -> float:
        return self.wakeup

    def status(self, now: float) -> IpamStatus:
        raise NotImplementedError

    def take_effects(self) -> list[IpamEffect]:
        effects, self.effects = self.effects, []
        return effects


class RecordingStore(Store):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[list[PersistRing | PersistOwned]] = []
        self.fail = False

    def save_ipam(self, changes: Any) -> None:
        if self.fail:
            raise lmdb.MapFullError("mdb_put: MDB_MAP_FULL: Environment mapsize limit reached")
        self.batches.append(list(changes))
        super().save_ipam(changes)


def run(tmp_path: Path, scenario: Callable[[IpamShell, ScriptedAllocator], Awaitable[T]]) -> T:
    async def main() -> T:
        allocator = ScriptedAllocator()
        store = RecordingStore(tmp_path)
        shell: IpamShell

        def run_all() -> None:
            shell.run_effects()

        shell = IpamShell(allocator, store, run_all, SUBNET)
        try:
            return await scenario(shell, allocator)
        finally:
            shell.close()
            store.close()

    return asyncio.run(main())


def test_concurrent_allocations_share_one_commit_and_are_persisted_first(tmp_path: Path) -> None:
    async def scenario(shell: IpamShell, alloc: ScriptedAllocator) -> list[CIDR]:
        results = await asyncio.gather(*(shell.allocate(f"c{i}", SUBNET) for i in range(8)))
        assert shell.commits == 1
        store = shell.store
        assert isinstance(store, RecordingStore) and len(store.batches) == 1
        _, owned = store.load_ipam()  # what a restart would find
        assert owned == {f"c{i}": (False, [results[i]]) for i in range(8)}
        return list(results)

    results = run(tmp_path, scenario)
    assert len(set(results)) == 8


def test_refusals_and_bad_requests(tmp_path: Path) -> None:
    async def scenario(shell: IpamShell, alloc: ScriptedAllocator) -> None:
        with pytest.raises(IpamRequestFailed, match="out of bounds"):
            await shell.allocate("refused", SUBNET)
        with pytest.raises(IpamRequestFailed, match="bad request"):
            await shell.allocate("invalid", SUBNET)
        with pytest.raises(IpamError, match="Delete: no addresses for x"):
            await shell.delete("x")
        assert await shell.admin_takeover("host3") == 7

    run(tmp_path, scenario)


def test_a_cancelled_waiter_cancels_its_request(tmp_path: Path) -> None:
    async def scenario(shell: IpamShell, alloc: ScriptedAllocator) -> None:
        alloc.ready = False
        task = asyncio.ensure_future(shell.allocate("c1", SUBNET))
        other = asyncio.ensure_future(shell.allocate("c2", SUBNET))
        await asyncio.sleep(0)
        assert set(alloc.held.values()) == {"c1", "c2"}
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ("cancel", 1) in alloc.calls and alloc.held == {2: "c2"}
        alloc.release_held()
        shell.run_effects()
        assert str(await other) == "10.32.0.1/12"

    run(tmp_path, scenario)


def test_cancelled_reply_raises_ipam_cancelled(tmp_path: Path) -> None:
    async def scenario(shell: IpamShell, alloc: ScriptedAllocator) -> None:
        alloc.ready = False
        task = asyncio.ensure_future(shell.allocate("c1", SUBNET))
        await asyncio.sleep(0)
        alloc.cancel(1, 0.0)  # e.g. weave reset cancels what waits
        shell.run_effects()
        with pytest.raises(IpamCancelled):
            await task

    run(tmp_path, scenario)


def test_a_failed_commit_fails_the_requests_it_carried(tmp_path: Path) -> None:
    async def scenario(shell: IpamShell, alloc: ScriptedAllocator) -> None:
        store = shell.store
        assert isinstance(store, RecordingStore)
        store.fail = True
        with pytest.raises(IpamRequestFailed, match="persisting the allocation failed"):
            await shell.allocate("c1", SUBNET)
        with pytest.raises(lmdb.MapFullError):
            await shell.free("c1", SUBNET.addr + 1)
        store.fail = False
        await shell.prime()
        assert store.load_ipam()[0] == b"ring-bytes"

    run(tmp_path, scenario)


def test_store_round_trip_and_unknown_schema(tmp_path: Path) -> None:
    store = Store(tmp_path)
    cidrs = (CIDR.parse("10.32.0.1/12"), CIDR.parse("10.2.1.5/24"))
    store.save_ipam([PersistRing(b"\x00ring"), PersistOwned("c1", True, cidrs)])
    store.save_ipam([PersistOwned("weave:expose", False, cidrs[:1])])
    store.save_peer_name(0x0200000000FF)
    assert store.load_ipam() == (
        b"\x00ring",
        {"c1": (True, list(cidrs)), "weave:expose": (False, [cidrs[0]])},
    )
    store.save_ipam([PersistOwned("c1", True, ()), PersistRing(None)])
    assert store.load_ipam() == (None, {"weave:expose": (False, [cidrs[0]])})
    store.close()
    with lmdb.open(str(tmp_path / "weavedata.db"), subdir=False) as env, env.begin(write=True) as t:
        t.put(b"ipam-schema", b"99")
    store = Store(tmp_path)
    assert store.load_ipam() == (None, {})
    assert store.load_peer_name() == 0x0200000000FF  # other sections are untouched
    store.close()


def test_the_mesh_shell_timer_ticks_the_allocator() -> None:
    async def main() -> list[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        router = Router(
            RouterConfig(name=0x0200000000AA, nickname="t"), random.Random(1), loop.time()
        )
        mesh = MeshShell(router, "127.0.0.1", 0, lambda targets: None)
        alloc = ScriptedAllocator()
        alloc.wakeup = loop.time() + 0.05
        mesh.add_ticker(_TickerOnly(alloc))
        deadline = loop.time() + 5
        while ("tick",) not in alloc.calls and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await mesh.stop()
        return alloc.calls

    assert ("tick",) in asyncio.run(main())


class _TickerOnly:
    def __init__(self, alloc: ScriptedAllocator) -> None:
        self.alloc = alloc

    def tick(self, now: float) -> None:
        self.alloc.tick(now)

    def next_wakeup(self) -> float:
        return self.alloc.next_wakeup()

    def run_effects(self) -> None:
        self.alloc.take_effects()


def test_a_batch_writes_each_key_once_with_its_last_value() -> None:
    a, b = CIDR.parse("10.32.0.1/12"), CIDR.parse("10.32.0.2/12")
    batch: list[IpamEffect] = [
        PersistOwned("c1", False, (a,)),
        PersistRing(b"r1"),
        Reply(1, a, None),
        PersistOwned("c2", False, (b,)),
        PersistOwned("c1", False, ()),
        PersistRing(b"r2"),
    ]
    assert coalesce(batch) == [
        PersistOwned("c2", False, (b,)),
        PersistOwned("c1", False, ()),
        PersistRing(b"r2"),
    ]


def test_reserved_space_keeps_the_database_valid(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save_ipam([PersistRing(b"ring")])
    store.reserve_space(1 << 20)
    assert store.path.stat().st_size == 1 << 20
    store.reserve_space(1 << 16)  # never shrinks
    assert store.path.stat().st_size == 1 << 20
    store.save_ipam([PersistOwned("c1", False, (SUBNET,))])
    store.close()
    store = Store(tmp_path)
    assert store.load_ipam() == (b"ring", {"c1": (False, [SUBNET])})
    store.close()


def test_close_writes_what_is_still_queued(tmp_path: Path) -> None:
    async def scenario(shell: IpamShell, alloc: ScriptedAllocator) -> None:
        alloc.effects.append(PersistOwned("late", False, (SUBNET,)))
        shell.close()  # before the loop got to commit it
        assert shell.store.load_ipam()[1] == {"late": (False, [SUBNET])}

    run(tmp_path, scenario)


class _Handle:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def gossip_unicast(self, dst: int, msg: bytes, now: float) -> bool:
        self.sent.append(msg)
        return True

    def gossip_broadcast(self, update: Any, now: float) -> None:
        self.sent.append(b"broadcast")

    def gossip_neighbour_subset(self, update: Any, now: float) -> None:
        self.sent.append(b"subset")


def test_what_the_allocator_gossips_is_committed_before_the_router_sends_it(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        store = Store(tmp_path)
        alloc = ScriptedAllocator()
        watch = SendWatch(_Handle())
        shell: IpamShell
        on_socket: list[tuple[bytes | None, int]] = []

        def mesh_run_effects() -> None:  # as MeshShell: ours first, then the router's sends
            shell.run_effects()
            on_socket.append((store.load_ipam()[0], len(watch.gossip.sent)))  # type: ignore[attr-defined]

        shell = IpamShell(alloc, store, mesh_run_effects, SUBNET, watch)
        # a space donation: the ring changes and the allocator tells the peer at once
        alloc.effects.append(PersistRing(b"ring without the donated range"))
        watch.gossip_unicast(0x02, b"here is your range", 0.0)
        mesh_run_effects()
        assert on_socket == [(b"ring without the donated range", 1)]
        assert shell.commits == 1
        # an allocation tells nobody: its commit may follow in the writer thread
        await shell.allocate("c1", SUBNET)
        assert shell.commits == 2
        shell.close()
        store.close()

    asyncio.run(main())
