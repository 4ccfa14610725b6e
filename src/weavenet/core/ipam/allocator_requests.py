"""Requests to the allocator: allocate, claim, prime and the immediate ones (Go allocate.go,
claim.go, prime.go and the request half of allocator.go).

A long-running request that cannot complete yet waits in a pending queue and is tried
again whenever the ring or our space changes, and on every tick.
"""

from __future__ import annotations

import contextlib

from weavenet.core.ipam.address import CIDR, Range, format_address, make_cidr
from weavenet.core.ipam.allocator_core import AllocatorCore
from weavenet.core.ipam.allocator_types import (
    CANCELLED,
    MAX_CLAIM_TRIES,
    IpamError,
    PendingAllocate,
    PendingClaim,
    PendingPrime,
    Reply,
    RingState,
)
from weavenet.core.ipam.space import SpaceError
from weavenet.core.peername import UNKNOWN_PEER_NAME, format_peer_name

NO_CONTAINER_ID = "_"  # Go api.NoContainerID: the address is filed under its own text


class AllocatorRequests(AllocatorCore):
    # --- long-running requests -----------------------------------------------------------

    def allocate(
        self, req: int, ident: str, subnet: CIDR, now: float, *, is_container: bool = False
    ) -> None:
        """An address in ``subnet`` for ``ident`` (the one it has there already, if any)."""
        self._start(now)
        op = PendingAllocate(req, ident, subnet, is_container)
        if self._refuse_when_shut_down(req):
            return
        if not self._try_allocate(op, now):
            self._pending_allocates.append(op)
            self._arm_tick(now)
        self._finish()

    def claim(
        self,
        req: int,
        ident: str,
        cidr: CIDR,
        no_error_on_unknown: bool,
        now: float,
        *,
        is_container: bool = False,
    ) -> None:
        """Record that ``ident`` has ``cidr.addr``, taking it into our space if we can."""
        self._start(now)
        op = PendingClaim(req, ident, cidr, is_container, no_error_on_unknown)
        if self._refuse_when_shut_down(req):
            return
        if not self._try_claim(op, now):
            self._pending_claims.append(op)
            self._arm_tick(now)
        self._finish()

    def prime(self, req: int, now: float) -> None:
        """Reply once the ring exists, starting consensus if need be (GET /ring)."""
        self._start(now)
        op = PendingPrime(req)
        if self._refuse_when_shut_down(req):
            return
        if not self._try_prime(op, now):
            self._pending_primes.append(op)
            self._arm_tick(now)
        self._finish()

    def cancel(self, req: int, now: float) -> None:
        """The client went away: drop its request, answering ``cancelled``."""
        before = (
            len(self._pending_primes) + len(self._pending_claims) + len(self._pending_allocates)
        )
        self._pending_primes[:] = [op for op in self._pending_primes if op.req != req]
        self._pending_claims[:] = [op for op in self._pending_claims if op.req != req]
        self._pending_allocates[:] = [op for op in self._pending_allocates if op.req != req]
        after = len(self._pending_primes) + len(self._pending_claims) + len(self._pending_allocates)
        if after < before:
            self._effects.append(Reply(req, None, CANCELLED))

    def _refuse_when_shut_down(self, req: int) -> bool:
        if self._state is not RingState.SHUT_DOWN:
            return False
        self._effects.append(Reply(req, None, CANCELLED))
        return True

    def _cancel_all(self) -> None:
        for queue in (self._pending_primes, self._pending_claims, self._pending_allocates):
            for op in queue:
                if op.req is not None:
                    self._effects.append(Reply(op.req, None, CANCELLED))
            queue.clear()

    # --- immediate requests --------------------------------------------------------------

    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]:
        """The addresses ``ident`` has in ``subnet``'s host range (default subnet if None)."""
        return self._owned_in_range(ident, (subnet or self.config.default_subnet).host_range())

    def owned(self) -> dict[str, list[CIDR]]:
        return {ident: list(cidrs) for ident, (_, cidrs) in self._owned.items()}

    def free(self, ident: str, addr: int, now: float) -> None:
        self._start(now)
        if not self._remove_owned(ident, addr):
            raise IpamError(f"Free: address {format_address(addr)} not found for {ident}")
        self._space_free(addr)
        self._after_free(now)

    def delete(self, ident: str, now: float) -> None:
        self._start(now)
        cidrs = self._remove_all_owned(ident)
        if not cidrs:
            raise IpamError(f"Delete: no addresses for {ident}")
        for cidr in cidrs:
            self._space_free(cidr.addr)
        self._after_free(now)

    def owner(self, addr: int) -> str | None:
        """The ident that holds ``addr`` on this peer, None if none does."""
        return self._find_owner(addr) or None

    def transfer(self, ident: str, to_ident: str, addr: int, is_container: bool) -> CIDR:
        """File ``ident``'s address ``addr`` under ``to_ident`` instead, in one step (the
        address is never free in between). For the Docker plugin: Docker asks IPAM for an
        address before it says which container it is for."""
        entry = self._owned.get(ident)
        cidr = next((c for c in entry[1] if c.addr == addr), None) if entry else None
        if cidr is None:
            raise IpamError(f"Transfer: address {format_address(addr)} not found for {ident}")
        self._remove_owned(ident, addr)
        self._add_owned(to_ident, cidr, is_container)
        return cidr

    def _space_free(self, addr: int) -> None:
        """Addresses outside our space (claims outside the universe) are not in it."""
        with contextlib.suppress(SpaceError):  # as Go, which ignores Space.Free's error
            self._space.free(addr)

    def _after_free(self, now: float) -> None:
        self._try_pending_ops(now)
        self._finish()

    # --- trying pending requests ---------------------------------------------------------

    def _try_pending_ops(self, now: float) -> None:
        """Primes first, then claims (they may hold addresses), then allocations."""
        self._pending_primes[:] = [
            op for op in self._pending_primes if not self._try_prime(op, now)
        ]
        self._pending_claims[:] = [
            op for op in self._pending_claims if not self._try_claim(op, now)
        ]
        self._pending_allocates[:] = [
            op for op in self._pending_allocates if not self._try_allocate(op, now)
        ]

    def _have_pending_ops(self) -> bool:
        return bool(self._pending_primes or self._pending_claims or self._pending_allocates)

    def _try_prime(self, op: PendingPrime, now: float) -> bool:
        if not self._ring.empty():
            self._effects.append(Reply(op.req, None, None))
            return True
        self._establish_ring(now)
        return False

    def _try_allocate(self, op: PendingAllocate, now: float) -> bool:
        existing = self._owned_in_range(op.ident, op.subnet.range())
        if existing:
            self._effects.append(Reply(op.req, make_cidr(op.subnet, existing[0].addr), None))
            return True
        universe = self.config.universe
        if not universe.range().overlaps(op.subnet.range()):
            error = f"range {op.subnet} out of bounds: {universe}"
            self._effects.append(Reply(op.req, None, error))
            return True
        self._establish_ring(now)
        addr = self._space.allocate(op.subnet.host_range())
        if addr is not None:
            ident = format_address(addr) if op.ident == NO_CONTAINER_ID else op.ident
            cidr = make_cidr(op.subnet, addr)
            self._add_owned(ident, cidr, op.is_container)
            self._effects.append(Reply(op.req, cidr, None))
            return True
        self._ask_for_space(op, now)
        return False

    def _ask_for_space(self, op: PendingAllocate, now: float) -> None:
        """Out of space: ask the first reachable peer (weighted by its free space)."""
        subnet = op.subnet.range()
        donors = self._ring.choose_peers_to_ask_for_space(subnet.start, subnet.end, self._rng)
        op.asked = ()
        for donor in donors:
            if self._send_space_request(donor, subnet, now):
                op.asked = (donor,)
                break

    def _try_claim(self, op: PendingClaim, now: float) -> bool:
        op.tries += 1
        addr = op.cidr.addr
        if not self._ring.contains(addr):
            self._claim_outside_universe(op)
            return True
        self._establish_ring(now)
        owner = self._ring.owner(addr)
        if owner == UNKNOWN_PEER_NAME:  # our ring is empty: wait for it
            if op.no_error_on_unknown:
                self._claim_result(op, None)
            return False
        if owner != self._name:
            return self._claim_from_other_peer(op, owner, now)
        self._claim_ours(op)
        return True

    def _claim_outside_universe(self, op: PendingClaim) -> None:
        """Not ours to manage: just record it (unless another ident has it)."""
        previous = self._find_owner(op.cidr.addr)
        if previous == "":
            self._add_claimed(op)
        elif previous != op.ident and op.ident != NO_CONTAINER_ID:
            self._claim_result(op, f"address {op.cidr} already in use by {previous}")
        self._claim_result(op, None)

    def _claim_from_other_peer(self, op: PendingClaim, owner: int, now: float) -> bool:
        op.asked = owner
        if self._send_space_request(owner, Range(op.cidr.addr, op.cidr.addr + 1), now):
            return False
        reason = f"unknown relay destination: {format_peer_name(owner)}"
        if op.no_error_on_unknown:
            self._claim_result(op, None)
        elif op.tries > MAX_CLAIM_TRIES:
            self._claim_denied(op, owner, reason)
            return True
        return False

    def _claim_ours(self, op: PendingClaim) -> None:
        addr_text = format_address(op.cidr.addr)
        existing = self._find_owner(op.cidr.addr)
        if existing == "":
            try:
                self._space.claim(op.cidr.addr)
            except SpaceError as err:
                self._claim_result(op, str(err))
                return
            self._add_claimed(op)
            self._claim_result(op, None)
        elif existing == op.ident or (op.ident == NO_CONTAINER_ID and existing == addr_text):
            self._claim_result(op, None)  # the same ident claims it again
        elif existing == addr_text:
            self._claim_result(op, f"address {op.cidr} already in use")
        elif op.ident == NO_CONTAINER_ID:
            self._claim_result(op, None)  # cannot prove it is another container
        else:
            self._claim_result(op, f"address {op.cidr} is already owned by {existing}")

    def _add_claimed(self, op: PendingClaim) -> None:
        ident = format_address(op.cidr.addr) if op.ident == NO_CONTAINER_ID else op.ident
        self._add_owned(ident, op.cidr, op.is_container)

    def _claim_denied(self, op: PendingClaim, owner: int, reason: str = "") -> None:
        nickname = self._nicknames.get(owner)
        name = f" ({nickname})" if nickname else ""
        detail = f" - {reason}" if reason else ""
        text = f"address {op.cidr} is owned by other peer {format_peer_name(owner)}{name}{detail}"
        self._claim_result(op, text)

    def _claim_result(self, op: PendingClaim, error: str | None) -> None:
        """Answer once (Go sendResult); later errors of an answered claim are only logged."""
        if op.req is None:
            if error is not None:
                self._info(error)
            return
        body = None if error is None else f"Unable to claim: {error}"
        self._effects.append(Reply(op.req, None if error else op.cidr, body))
        op.req = None

    def _space_request_denied(self, sender: int, r: Range) -> None:
        """The owner has nothing to give: fail the claims for addresses in ``r``."""
        kept = []
        for op in self._pending_claims:
            if r.contains(op.cidr.addr):
                self._claim_denied(op, sender)
            else:
                kept.append(op)
        self._pending_claims[:] = kept
