"""The asyncio shell around the sans-IO IPAM allocator.

The allocator lives on the router's event loop and is driven from the mesh shell's one
timer (it is a :class:`~weavenet.io.mesh_tcp.Ticker`). After every call into it the shell
runs its effects: persistence first, in ONE LMDB write transaction per batch, and only
then the answers to waiting requests; then the router's effects, so that the gossip the
allocator queued goes out. A batch is everything queued during one turn of the event
loop, so concurrent requests share a commit.

Batches are written by one writer thread, in order, while the loop keeps serving; their
answers go out once they are committed. One exception: when the allocator has just sent
gossip (a range given away, a transfer), its batch is committed at once, before the router
gets to write that gossip to a socket, as Go persists before it tells its peers.

Long-running requests (allocate, claim, prime) are awaitables: if the awaiting task is
cancelled (the HTTP client went away), the request is cancelled in the allocator too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from weavenet.api.control import IpamCancelled, IpamRequestFailed
from weavenet.api.ipam_report import ipam_report, ipam_status_section, with_unconnected_targets
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import (
    IPAM_CHANNEL,
    Allocator,
    AllocatorConfig,
    IpamEffect,
    IpamError,
    IpamStatus,
    PersistOwned,
    PersistRing,
    Reply,
)
from weavenet.core.mesh.gossip import Gossip, GossipData
from weavenet.io.ipam_config import IpamSettings
from weavenet.io.mesh_tcp import MeshShell, ReportSection
from weavenet.io.store import Store

log = logging.getLogger("weavenet.ipam")
CANCELLED = "cancelled"  # the Reply error of a cancelled request (contract B)
Waiter = asyncio.Future[None]


class AllocatorApi(Protocol):
    """The part of :class:`~weavenet.core.ipam.allocator.Allocator` the shell drives."""

    def allocate(self, req: int, ident: str, subnet: CIDR, now: float) -> None: ...
    def claim(
        self, req: int, ident: str, cidr: CIDR, no_error_on_unknown: bool, now: float
    ) -> None: ...
    def prime(self, req: int, now: float) -> None: ...
    def cancel(self, req: int, now: float) -> None: ...
    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]: ...
    def owned(self) -> dict[str, list[CIDR]]: ...
    def free(self, ident: str, addr: int, now: float) -> None: ...
    def delete(self, ident: str, now: float) -> None: ...
    def owner(self, addr: int) -> str | None: ...
    def transfer(self, ident: str, to_ident: str, addr: int, is_container: bool) -> CIDR: ...
    def shutdown(self, now: float) -> None: ...
    def admin_takeover(self, peer: str, now: float) -> int: ...
    def tick(self, now: float) -> None: ...
    def next_wakeup(self) -> float: ...
    def status(self, now: float) -> IpamStatus: ...
    def take_effects(self) -> list[IpamEffect]: ...


class SendWatch:
    """The allocator's gossip handle, noting that it sent something: what it tells its
    peers (a range given away, a transfer) may rest on state it has just changed, which
    must be committed before the router writes it to a socket."""

    def __init__(self, gossip: Gossip) -> None:
        self.gossip = gossip
        self.sent = False

    def gossip_unicast(self, dst: int, msg: bytes, now: float) -> bool:
        self.sent = True
        return self.gossip.gossip_unicast(dst, msg, now)

    def gossip_broadcast(self, update: GossipData, now: float) -> None:
        self.sent = True
        self.gossip.gossip_broadcast(update, now)

    def gossip_neighbour_subset(self, update: GossipData, now: float) -> None:
        self.sent = True
        self.gossip.gossip_neighbour_subset(update, now)


class IpamShell:
    """Implements :class:`weavenet.api.control.IpamControl` over a real Allocator."""

    def __init__(
        self,
        allocator: AllocatorApi,
        store: Store,
        run_all_effects: Callable[[], None],
        default_subnet: CIDR,
        sends: SendWatch | None = None,
    ) -> None:
        """``run_all_effects`` is the mesh shell's: it calls our ``run_effects`` first,
        then sends what the router has queued; ``sends`` watches the allocator's gossip."""
        self.allocator = allocator
        self.store = store
        self.run_all_effects = run_all_effects
        self.default_subnet = default_subnet
        self.sends = sends
        self.loop = asyncio.get_running_loop()
        self._req_ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self._batch: list[IpamEffect] = []  # queued, not yet being written
        self._batch_waiters: list[Waiter] = []  # immediate changes waiting for that batch
        self._commit_handle: asyncio.Handle | None = None
        self._writing = False  # a batch is being written
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ipam-store")
        self._writer.submit(store.reserve_space)  # before any commit: the writer is serial
        self.commits = 0  # LMDB write transactions made (for tests and benchmarks)

    # ---- Ticker (driven by the mesh shell) -------------------------------------------
    def tick(self, now: float) -> None:
        self.allocator.tick(now)

    def next_wakeup(self) -> float:
        return self.allocator.next_wakeup()

    def run_effects(self) -> None:
        self._batch.extend(self.allocator.take_effects())
        if self.sends is not None and self.sends.sent:
            self.sends.sent = False
            if coalesce(self._batch):
                self._commit_now()
        self._schedule()

    def _commit_now(self) -> None:
        """Commit the batch before returning, blocking the loop (after any write under
        way: the writer is serial). Only when the allocator has just gossiped: rare."""
        if self._commit_handle is not None:
            self._commit_handle.cancel()
            self._commit_handle = None
        batch, self._batch = self._batch, []
        waiters, self._batch_waiters = self._batch_waiters, []
        failure: Exception | None = None
        try:
            self._writer.submit(self.store.save_ipam, coalesce(batch)).result()
            self.commits += 1
        except Exception as exc:  # as in _written: the requests see it
            log.error("[allocator]: persisting IPAM state failed: %s", exc)
            failure = exc
        self._settle(batch, waiters, failure)

    # ---- persistence: batches committed in order, one transaction each ----------------
    def _schedule(self) -> None:
        if not (self._batch or self._batch_waiters) or self._writing:
            return
        if self._commit_handle is None:  # after this turn: concurrent requests join in
            self._commit_handle = self.loop.call_soon(self._commit_next)

    def _commit_next(self) -> None:
        """Write the batch in the writer thread (the loop keeps serving meanwhile); its
        answers go out when the transaction has committed."""
        self._commit_handle = None
        batch, self._batch = self._batch, []
        waiters, self._batch_waiters = self._batch_waiters, []
        changes = coalesce(batch)
        if not changes:
            self._settle(batch, waiters, None)
            return
        self._writing = True
        write = self.loop.run_in_executor(self._writer, self.store.save_ipam, changes)
        write.add_done_callback(lambda done: self._written(done, batch, waiters))

    def _written(
        self, done: asyncio.Future[None], batch: list[IpamEffect], waiters: list[Waiter]
    ) -> None:
        self._writing = False
        failure = done.exception() if not done.cancelled() else RuntimeError("cancelled")
        if failure is None:
            self.commits += 1
        else:  # keep serving; the requests of this batch see the failure
            log.error("[allocator]: persisting IPAM state failed: %s", failure)
        self._settle(batch, waiters, failure)
        self._schedule()

    def _settle(
        self, batch: list[IpamEffect], waiters: list[Waiter], failure: BaseException | None
    ) -> None:
        for effect in batch:
            if isinstance(effect, Reply):
                future = self._waiting.pop(effect.req, None)
                if future is not None and not future.done():
                    _settle(future, effect, failure)
        for waiter in waiters:
            if not waiter.done():
                if failure is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(failure)

    def _kick(self) -> None:
        """Run every effect the last call queued (ours via the mesh shell's hook)."""
        self.run_all_effects()

    async def _durable(self) -> None:
        """Return once everything queued so far is committed."""
        if not self._batch and not self._writing:
            return
        waiter: Waiter = self.loop.create_future()
        self._batch_waiters.append(waiter)
        self._schedule()
        await waiter

    def now(self) -> float:
        return self.loop.time()

    # ---- long-running requests ---------------------------------------------------------
    async def _request(self, start: Callable[[int, float], None]) -> Reply:
        req = next(self._req_ids)
        future: asyncio.Future[Reply] = self.loop.create_future()
        self._waiting[req] = future
        try:
            start(req, self.now())
        except IpamError as exc:
            self._waiting.pop(req, None)
            raise IpamRequestFailed(str(exc)) from exc
        finally:
            self._kick()
        try:
            return await future
        except asyncio.CancelledError:
            if self._waiting.pop(req, None) is not None:
                log.info("[allocator]: request %d cancelled: the client went away", req)
                self.allocator.cancel(req, self.now())
                self._kick()
            raise

    async def allocate(self, ident: str, subnet: CIDR) -> CIDR:
        reply = await self._request(
            lambda req, now: self.allocator.allocate(req, ident, subnet, now)
        )
        assert reply.cidr is not None
        return reply.cidr

    async def claim(self, ident: str, cidr: CIDR, no_error_on_unknown: bool) -> None:
        await self._request(
            lambda req, now: self.allocator.claim(req, ident, cidr, no_error_on_unknown, now)
        )

    async def prime(self) -> None:
        await self._request(self.allocator.prime)

    def cancel_all(self) -> None:
        """Cancel every request still waiting (the HTTP server is stopping)."""
        now = self.now()
        for req in list(self._waiting):
            self.allocator.cancel(req, now)
        self._kick()

    # ---- immediate requests ------------------------------------------------------------
    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]:
        return self.allocator.lookup(ident, subnet)

    def owned(self) -> dict[str, list[CIDR]]:
        return self.allocator.owned()

    async def _change(self, call: Callable[[float], Any]) -> Any:
        try:
            return call(self.now())
        finally:
            self._kick()
            await self._durable()

    async def free(self, ident: str, addr: int) -> None:
        await self._change(lambda now: self.allocator.free(ident, addr, now))

    def owner(self, addr: int) -> str | None:
        return self.allocator.owner(addr)

    async def transfer(self, ident: str, to_ident: str, addr: int) -> CIDR:
        """Re-file an address under another ident (see AllocatorRequests.transfer)."""
        cidr: CIDR = await self._change(
            lambda now: self.allocator.transfer(ident, to_ident, addr, is_container=True)
        )
        return cidr

    async def delete(self, ident: str) -> None:
        await self._change(lambda now: self.allocator.delete(ident, now))

    def release(self, ident: str) -> None:
        """The router's callback when a container is gone for good (contract C)."""
        with contextlib.suppress(IpamError):  # it had no addresses
            self.allocator.delete(ident, self.now())
        self._kick()

    async def shutdown(self) -> None:
        await self._change(self.allocator.shutdown)

    async def admin_takeover(self, peer: str) -> int:
        taken: int = await self._change(lambda now: self.allocator.admin_takeover(peer, now))
        return taken

    # ---- status ------------------------------------------------------------------------
    def status(self) -> IpamStatus:
        return self.allocator.status(self.now())

    def report(self) -> dict[str, Any]:
        return ipam_report(self.status())

    def status_section(self) -> dict[str, Any]:
        return ipam_status_section(self.status())

    def close(self) -> None:
        """At shutdown: finish the write under way, write what is queued, and cancel
        whatever still waits."""
        self._writer.shutdown(wait=True)
        self._batch.extend(self.allocator.take_effects())
        if self._commit_handle is not None:
            self._commit_handle.cancel()
        changes = coalesce(self._batch)
        if changes:
            self.store.save_ipam(changes)
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()


def coalesce(batch: list[IpamEffect]) -> list[PersistRing | PersistOwned]:
    """The changes of a batch, each key once with its last value (one transaction
    writes them, so only the final state of each key matters)."""
    last: dict[str | None, PersistRing | PersistOwned] = {}
    for effect in batch:
        if isinstance(effect, PersistRing):
            last.pop(None, None)
            last[None] = effect
        elif isinstance(effect, PersistOwned):
            last.pop(effect.ident, None)
            last[effect.ident] = effect
    return list(last.values())


def _settle(future: asyncio.Future[Reply], reply: Reply, failure: BaseException | None) -> None:
    if failure is not None:
        future.set_exception(IpamRequestFailed(f"persisting the allocation failed: {failure}"))
    elif reply.error == CANCELLED:
        future.set_exception(IpamCancelled(CANCELLED))
    elif reply.error is not None:
        future.set_exception(IpamRequestFailed(reply.error))
    else:
        future.set_result(reply)


async def start_ipam(
    settings: IpamSettings | None, mesh: MeshShell, store: Store
) -> IpamShell | None:
    """Build the allocator for ``settings`` (None: IPAM disabled), restore its persisted
    state, give it the IPAM gossip channel and the shell's timer."""
    if settings is None:
        return None
    router = mesh.router
    config = AllocatorConfig(
        name=router.name,
        uid=router.uid,
        nickname=router.config.nickname,
        universe=settings.universe,
        default_subnet=settings.default_subnet,
        init=settings.init,
    )
    now = mesh.now()
    allocator = Allocator(config, router, random.Random(), now)
    sends = SendWatch(router.new_gossip(IPAM_CHANNEL, allocator))
    allocator.attach_gossip(sends)
    ring, owned = store.load_ipam()
    allocator.restore(ring, owned, now)
    shell = IpamShell(allocator, store, mesh.run_effects, settings.default_subnet, sends)
    router.on_peer_gone(allocator.peer_gone)
    mesh.sections.append(
        ReportSection(
            "IPAM",
            lambda: with_unconnected_targets(shell.report(), router.maker.status(0.0)),
            lambda: with_unconnected_targets(shell.status_section(), router.maker.status(0.0)),
        )
    )
    mesh.add_ticker(shell)
    return shell
