"""Missed-DEL garbage collection: free the addresses of CNI containers that are gone.

A CNI ADD (``weave-net`` or ``weave-ipam``) registers its container with the router
(``PUT /cni/<ident>``, kept in LMDB as ``cni:<ident>``); a DEL unregisters it. Every
``--cni-gc-period`` seconds the collector asks every configured source which container
ids live, and releases the IPAM addresses of registered containers that none lists
(see ``weavenet.core.cni_gc`` for the rules: never on an unknown answer, never a young
record, only after two consecutive misses).

The interface a source implements (the Kubernetes one, pods on this node from the API
server, is built on it elsewhere)::

    class LiveContainers(Protocol):
        name: str                                  # for logs, e.g. "containerd k8s.io"
        async def live_ids(self) -> set[str] | None: ...

``live_ids`` returns the CNI_CONTAINERIDs of every container (pod sandbox) this source
knows to be alive on this host, or None when it cannot tell (runtime down, API
unreachable, not yet synced): None makes the whole round free nothing. A source must
answer within a few seconds and never raise for an ordinary failure (return None and
log). Register one with :meth:`CniCollector.add_source` (any time, from the router's
event loop; in ``weaver`` the collector is ``Running.cni``, made by ``startup.start_cni``
whenever IPAM is on). A round frees something only while there is at least one source,
and an id is alive when ANY source lists it (several runtimes may share the plugin on
one host).

Built-in sources, chosen with ``--cni-runtime`` (repeatable):
``containerd[:SOCKET[:NAMESPACE]]`` (running tasks, from ``ctr``; default socket
/run/containerd/containerd.sock, namespace k8s.io; ids are listed both bare, as CRI
passes them, and as ``<namespace>-<id>``, as ``ctr run --cni`` does) and
``podman[:PATH]`` (running containers, from ``podman ps``; it inherits the router's
CONTAINERS_CONF / CONTAINERS_STORAGE_CONF).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from weavenet.core.cni_gc import CniRecord, GcPolicy, GcState
from weavenet.core.errors import ConfigError

log = logging.getLogger("weavenet.cni")

LIST_TIMEOUT = 10.0
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
CRI_NAMESPACE = "k8s.io"
_LIVE_TASK_STATES = ("RUNNING", "PAUSED", "PAUSING", "CREATED")


class LiveContainers(Protocol):
    """A runtime's (or the API server's) view of the containers alive on this host."""

    name: str

    async def live_ids(self) -> set[str] | None: ...


class CniRecords(Protocol):
    """Where the registered CNI containers live (the router's store)."""

    def load_cni(self) -> list[CniRecord]: ...
    def save_cni(self, record: CniRecord) -> None: ...
    def drop_cni(self, ident: str) -> None: ...


async def _output(argv: Sequence[str]) -> str | None:
    """stdout of `argv`, or None (logged) if it cannot run, fails or takes too long."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        log.warning("CNI GC: cannot run %s: %s", argv[0], exc)
        return None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), LIST_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        log.warning("CNI GC: %s took over %gs; skipping this round", argv[0], LIST_TIMEOUT)
        return None
    if proc.returncode != 0:
        why = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        log.warning("CNI GC: %s failed (%s): %s", " ".join(argv), proc.returncode, why[0])
        return None
    return out.decode(errors="replace")


class ContainerdTasks:
    """Running tasks of one containerd namespace, listed with ``ctr tasks ls``."""

    def __init__(self, socket: str = CONTAINERD_SOCKET, namespace: str = CRI_NAMESPACE) -> None:
        self.socket, self.namespace = socket, namespace
        self.name = f"containerd {namespace} at {socket}"

    async def live_ids(self) -> set[str] | None:
        out = await _output(["ctr", "-a", self.socket, "-n", self.namespace, "tasks", "ls"])
        if out is None:
            return None
        ids: set[str] = set()
        for line in out.splitlines()[1:]:  # header: TASK PID STATUS
            fields = line.split()
            if len(fields) >= 3 and fields[2] in _LIVE_TASK_STATES:
                ids |= {fields[0], f"{self.namespace}-{fields[0]}"}
        return ids


class PodmanContainers:
    """Running podman containers (``podman ps``), full ids."""

    def __init__(self, podman: str = "podman") -> None:
        self.podman = podman
        self.name = f"podman ({podman})"

    async def live_ids(self) -> set[str] | None:
        out = await _output([self.podman, "ps", "--no-trunc", "--format", "{{.ID}}"])
        return None if out is None else set(out.split())


def parse_runtime(spec: str) -> LiveContainers:
    """A source from a ``--cni-runtime`` value (ConfigError saying the forms otherwise)."""
    kind, _, rest = spec.partition(":")
    if kind == "containerd":
        socket, _, namespace = rest.partition(":")
        return ContainerdTasks(socket or CONTAINERD_SOCKET, namespace or CRI_NAMESPACE)
    if kind == "podman":
        return PodmanContainers(rest or "podman")
    raise ConfigError(
        f"invalid --cni-runtime {spec!r}: use containerd[:SOCKET[:NAMESPACE]] or podman[:PATH]"
    )


class CniCollector:
    """The registry of CNI containers and the periodic collector of the ones gone."""

    def __init__(
        self,
        records: CniRecords,
        release: Callable[[str], None],
        period: float,
        policy: GcPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._release = release
        self._period = period
        self._state = GcState(policy)
        self._clock = clock
        self._sources: list[LiveContainers] = []
        self._table = {r.ident: r for r in records.load_cni()}
        self.freed_total = 0

    # --- the registry (HTTP: PUT/DELETE/GET /cni) ----------------------------------------

    def register(self, ident: str, netns: str, ifname: str) -> CniRecord:
        record = CniRecord(ident, netns, ifname, self._clock())
        self._records.save_cni(record)
        self._table[ident] = record
        return record

    def unregister(self, ident: str) -> bool:
        if self._table.pop(ident, None) is None:
            return False
        self._records.drop_cni(ident)
        return True

    def records(self) -> list[CniRecord]:
        return list(self._table.values())

    def snapshot(self) -> dict[str, object]:
        return {
            "containers": [r.to_json() for r in self._table.values()],
            "sources": [s.name for s in self._sources],
            "freed": self.freed_total,
        }

    # --- collection ------------------------------------------------------------------------

    def add_source(self, source: LiveContainers) -> None:
        self._sources.append(source)

    async def live_ids(self) -> set[str] | None:
        """The union of every source's answer; None if there is none or any is unknown."""
        if not self._sources:
            return None
        answers = await asyncio.gather(*(s.live_ids() for s in self._sources))
        if any(a is None for a in answers):
            return None
        return set().union(*(a for a in answers if a is not None))

    async def collect_once(self) -> list[str]:
        """One round: release and unregister the containers gone; returns their idents."""
        if not self._table:
            return []
        live = await self.live_ids()
        doomed = self._state.round(self.records(), live, self._clock())
        for ident in doomed:
            record = self._table.get(ident)
            if record is None:  # a DEL came meanwhile
                continue
            log.info(
                "CNI GC: container %s (netns %s) is gone and no DEL came: freeing its addresses",
                ident,
                record.netns,
            )
            self._release(ident)
            self.unregister(ident)
            self.freed_total += 1
        return doomed

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            try:
                await self.collect_once()
            except Exception:  # a bug in one round must not end the collector
                log.exception("CNI GC round failed")
