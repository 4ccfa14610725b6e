"""The router's attachments shell: desired state in LMDB, the kernel kept matching it.

On start and every `RECONCILE_INTERVAL` seconds: the bridge (re-created with its TAP and
ports if deleted, `weave expose` addresses put back), the firewall table (re-applied if
flushed) and every attachment (observe in a worker thread, plan in the core, apply the
difference in a worker thread). Table changes are committed to LMDB before the kernel is
touched and before anything is acknowledged; a container gone for good has its attachment
dropped and its IPAM addresses released through `release` (None when IPAM is disabled).

Everything here runs on the event loop; blocking netlink runs in `asyncio.to_thread`,
under one lock so that a request and a reconcile round never interleave.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import Any

from weavenet import dataplane
from weavenet.core.attachments import (
    Action,
    Attachment,
    AttachmentError,
    AttachmentTable,
    AttachRequest,
    CreateInterface,
    Drop,
    Observation,
    Rebind,
    RecordMac,
    TableChange,
    plan,
)
from weavenet.core.errors import WeaveError
from weavenet.dataplane.observe import apply, netns_identity, observe
from weavenet.io.reconcile import keep_bridge
from weavenet.io.store import ExposedRecord, Store

log = logging.getLogger("weavenet.attachments")

RECONCILE_INTERVAL = 5.0
Cidr = ipaddress.IPv4Interface
Release = Callable[[str], None]


class AttachmentKeeper:
    def __init__(self, store: Store, bridge: str, release: Release | None) -> None:
        self._store = store
        self._bridge = bridge
        self._release = release
        self._table = AttachmentTable(store.load_attachments())
        self._exposed: list[ExposedRecord] = store.load_exposed()
        self._lock = asyncio.Lock()

    # --- queries (for GET /attachments) -------------------------------------------------

    def attachments(self) -> list[Attachment]:
        return self._table.all()

    def exposed(self) -> list[ExposedRecord]:
        return list(self._exposed)

    # --- requests -----------------------------------------------------------------------

    async def attach(self, req: AttachRequest) -> Attachment:
        """Record the attachment (one transaction), then wire it; on failure roll back."""
        if not req.cidrs:
            raise AttachmentError("no address to attach: give at least one cidr")
        async with self._lock:
            netns_id = await asyncio.to_thread(netns_identity, req.netns_path)
            if netns_id is None:
                raise AttachmentError(f"network namespace {req.netns_path} not found")
            old = self._table.get(req.ident)
            att = self._table.add(_attachment(req, netns_id))
            self._store.save_attachments(put=[att])
            try:
                mac = await asyncio.to_thread(apply, CreateInterface(att), self._bridge)
            except dataplane.DataplaneError as exc:
                self._restore(req.ident, old)
                raise AttachmentError(f"attach {req.ident}: {exc}", internal=True) from exc
            if mac != att.mac:
                att = self._change(RecordMac(att.ident, mac)) or att
            return att

    def _restore(self, ident: str, old: Attachment | None) -> None:
        self._table.remove(ident)
        if old is None:
            self._store.save_attachments(drop=[ident])
        else:
            self._store.save_attachments(put=[self._table.add(old)])

    async def detach(
        self, ident: str, netns_path: str | None, ips: Sequence[ipaddress.IPv4Address] | None
    ) -> tuple[list[Cidr], bool]:
        """Remove those addresses (all if None) from the container and the table; drop the
        attachment (releasing its IPAM addresses) once none are left. Returns (removed
        addresses, whether the attachment is gone)."""
        async with self._lock:
            att = self._table.get(ident)
            path = netns_path or (att.netns_path if att else None)
            removed: list[Cidr] = []
            if path is not None and netns_identity(path) is not None:
                ref = dataplane.ContainerRef(ident, path)
                wanted = None if ips is None else [Cidr(f"{ip}/32") for ip in ips]
                try:
                    removed = await asyncio.to_thread(dataplane.detach, ref, wanted)
                except dataplane.DataplaneError as exc:
                    raise AttachmentError(f"detach {ident}: {exc}", internal=True) from exc
            forgotten, left = self._table.remove_cidrs(ident, ips)
            if att is not None:
                self._persist(att.ident, left)
            removed += [c for c in forgotten if c.ip not in {r.ip for r in removed}]
            dropped = att is not None and left is None
            if dropped:
                self._released(ident)
            return removed, dropped

    async def expose(self, cidr: Cidr, masquerade: bool) -> None:
        async with self._lock:
            self._exposed = [e for e in self._exposed if e[0] != cidr] + [(cidr, masquerade)]
            self._store.save_exposed(self._exposed)
            try:
                await asyncio.to_thread(
                    dataplane.expose, cidr, self._bridge, masquerade, state=self._firewall()
                )
            except dataplane.DataplaneError as exc:
                raise AttachmentError(f"unable to expose: {exc}", internal=True) from exc

    async def hide(self, cidr: Cidr) -> bool:
        """Take `cidr` off the bridge and out of the firewall; False if it was not exposed."""
        async with self._lock:
            known = any(e[0] == cidr for e in self._exposed)
            self._exposed = [e for e in self._exposed if e[0] != cidr]
            self._store.save_exposed(self._exposed)
            try:
                await asyncio.to_thread(dataplane.hide, cidr, state=self._firewall())
            except dataplane.DataplaneError as exc:
                raise AttachmentError(f"unable to hide: {exc}", internal=True) from exc
            return known

    # --- reconciling --------------------------------------------------------------------

    async def run(self, interval: float = RECONCILE_INTERVAL) -> None:
        """Reconcile every `interval` seconds, until cancelled (the daemon runs the first
        round itself, before it starts answering requests)."""
        while True:
            await asyncio.sleep(interval)  # a period, not a synchronisation
            await self.reconcile()

    async def container_event(self, ident: str) -> None:
        """Docker says container `ident` started or was removed: if it is one of ours,
        reconcile now rather than at the next round (re-attach it in its new namespace,
        or drop it and free its addresses)."""
        if self._table.get(ident) is not None:
            await self.reconcile()

    async def reconcile(self) -> None:
        """One round; failures are logged and retried next round."""
        async with self._lock:
            try:
                await asyncio.to_thread(keep_bridge, self._bridge, self._firewall())
            except (OSError, ValueError, dataplane.DataplaneError) as exc:
                log.error("reconcile bridge %s: %s", self._bridge, exc)
                return
            snapshot = self._table.all()
            observations = await asyncio.to_thread(self._observe_all, snapshot)
            await self._carry_out(plan(self._table, observations))

    def _observe_all(self, snapshot: list[Attachment]) -> dict[str, Observation]:
        found = {}
        for att in snapshot:
            try:
                found[att.ident] = observe(att, self._bridge)
            except dataplane.DataplaneError as exc:
                log.error("observe %s: %s", att.ident, exc)
        return found

    async def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Rebind | RecordMac | Drop):
                self._change(action)
                continue
            att = action.attachment
            log.info("Repairing %s: %s", att.ident, type(action).__name__)
            try:
                mac = await asyncio.to_thread(apply, action, self._bridge)
            except dataplane.DataplaneError as exc:
                log.error("repair %s: %s", att.ident, exc)
                continue
            current = self._table.get(att.ident)
            if current is not None and current.mac != mac:
                self._change(RecordMac(att.ident, mac))

    def _change(self, action: TableChange) -> Attachment | None:
        """Apply a table change and commit it; a Drop also releases the addresses."""
        if isinstance(action, Drop):
            log.info("Container %s is gone (%s): dropping its attachment", action.ident,
                     action.reason)  # fmt: skip
        att = self._table.change(action)
        self._persist(action.ident, att)
        if isinstance(action, Drop):
            self._released(action.ident)
        return att

    def _persist(self, ident: str, att: Attachment | None) -> None:
        if att is None:
            self._store.save_attachments(drop=[ident])
        else:
            self._store.save_attachments(put=[att])

    def _released(self, ident: str) -> None:
        if self._release is None:
            return
        try:
            self._release(ident)
        except WeaveError as exc:  # e.g. IPAM never knew the ident: nothing to free
            log.info("release %s: %s", ident, exc)

    def _firewall(self) -> dataplane.FirewallState:
        exposed = tuple(dataplane.Exposed(c, m) for c, m in self._exposed)
        return dataplane.FirewallState(self._bridge, exposed)

    def snapshot(self) -> dict[str, Any]:
        """The JSON of GET /attachments."""
        return {
            "attachments": [a.to_record() for a in self._table.all()],
            "exposed": [{"cidr": str(c), "masquerade": m} for c, m in self._exposed],
        }


def _attachment(req: AttachRequest, netns_id: str) -> Attachment:
    return Attachment(
        ident=req.ident,
        spec=req.spec,
        netns_path=req.netns_path,
        netns_id=netns_id,
        cidrs=req.cidrs,
        multicast_route=req.multicast_route,
        dns_name=req.dns_name,
    )
