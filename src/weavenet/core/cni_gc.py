"""Which CNI allocations to free: the decision half of the missed-DEL collector.

A CNI ADD records its container (ident, namespace path, interface, when) in the router;
a DEL drops the record. When a DEL never comes (the runtime crashed, the node rebooted,
the sandbox was killed) the record stays, and so would the addresses (pain point #2).
The collector (``weavenet.io.cni_gc``) asks the runtimes which containers live and feeds
the answer here; this module decides, without I/O:

- an unknown answer (None) frees nothing;
- a record younger than ``min_age`` is kept (the runtime may not list a container whose
  network it is still setting up);
- a record must be missing from ``misses_needed`` consecutive answers before it is freed,
  so one racy listing cannot free a live container.
"""

from __future__ import annotations

from collections.abc import Iterable, Set

import msgspec


class CniRecord(msgspec.Struct, frozen=True):
    """One container attached through CNI (persisted by the router)."""

    ident: str  # CNI_CONTAINERID, also the IPAM ident
    netns: str  # CNI_NETNS at ADD
    ifname: str  # CNI_IFNAME at ADD
    added: float  # wall-clock seconds at ADD

    def to_json(self) -> dict[str, str | float]:
        return {
            "ident": self.ident,
            "netns": self.netns,
            "ifname": self.ifname,
            "added": self.added,
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> CniRecord:
        added = data.get("added", 0.0)
        return CniRecord(
            ident=str(data["ident"]),
            netns=str(data.get("netns", "")),
            ifname=str(data.get("ifname", "")),
            added=float(added) if isinstance(added, int | float) else 0.0,
        )


class GcPolicy(msgspec.Struct):
    min_age: float = 30.0
    misses_needed: int = 2


class GcState(msgspec.Struct):
    """Consecutive misses per ident, carried from one round to the next."""

    policy: GcPolicy = msgspec.field(default_factory=GcPolicy)
    misses: dict[str, int] = msgspec.field(default_factory=dict)

    def round(self, records: Iterable[CniRecord], live: Set[str] | None, now: float) -> list[str]:
        """One collection round: the idents to free now (in record order)."""
        if live is None:
            return []
        records = list(records)
        misses: dict[str, int] = {}
        doomed: list[str] = []
        for rec in records:
            if rec.ident in live or now - rec.added < self.policy.min_age:
                continue
            count = self.misses.get(rec.ident, 0) + 1
            if count >= self.policy.misses_needed:
                doomed.append(rec.ident)
            else:
                misses[rec.ident] = count
        self.misses = misses
        return doomed
