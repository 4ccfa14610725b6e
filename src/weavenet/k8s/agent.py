"""The Kubernetes agent: what Weave's kube-utils and launch.sh did, as one asyncio process.

Start-up: wait for our Node, annotate it with our router's peer name, read (or, first of all,
create) the ConfigMap that names the IPAM seed, launch the router with `--ipalloc-init
seed=<seed>` and the other nodes' InternalIPs, then set NetworkUnavailable=False once it
answers. After that, two loops: a Node watch that keeps the router's peers current, and a
reconciliation (on every change and every `resync` seconds) that reclaims the ranges of peers
no node runs any more, under the Lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import time

import msgspec

from weavenet.core.kube.reclaim import (
    LeaseAction,
    NodeView,
    ipam_init,
    join_names,
    lease_action,
    parse_names,
    peer_addresses,
    peer_changes,
    reclaim_candidates,
)
from weavenet.k8s.kube import Conflict, Kube, Stored, connect
from weavenet.k8s.metrics import AgentMetrics
from weavenet.k8s.router import RouterClient

log = logging.getLogger("weavenet.k8s")


class AgentConfig(msgspec.Struct):
    node_name: str
    namespace: str = "kube-system"
    kubeconfig: str | None = None
    http_addr: str = "127.0.0.1:6784"
    metrics_addr: str = "127.0.0.1:6786"
    launch_args: list[str] = msgspec.field(default_factory=list)
    weave: list[str] = msgspec.field(
        default_factory=lambda: [sys.executable, "-m", "weavenet.cli.main"]
    )
    resync: float = 5.0
    lease_seconds: int = 15
    watch_seconds: int = 60


class Agent:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.router = RouterClient(cfg.http_addr)
        self.metrics = AgentMetrics()
        self.nodes: dict[str, NodeView] = {}
        self.connected: set[str] = set()
        self.peer = ""
        self.changed = asyncio.Event()
        self.kube: Kube | None = None

    async def run(self) -> None:
        api = await connect(self.cfg.kubeconfig)
        self.kube = Kube(api, self.cfg.namespace)
        await self.metrics.serve(self.cfg.metrics_addr)
        try:
            await self.start_router(self.kube)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.watch_loop(self.kube))
                tasks.create_task(self.reconcile_loop(self.kube))
        finally:
            await api.close()
            await self.metrics.close()

    # --- start-up ------------------------------------------------------------------------
    async def start_router(self, kube: Kube) -> None:
        me = self.cfg.node_name
        while await kube.node(me) is None:
            log.info("waiting for node %s to be registered", me)
            await asyncio.sleep(1)
        self.peer = await self.peer_name()
        await kube.annotate_peer(me, self.peer)
        seed = await self.ipam_seed(kube)
        nodes, _ = await kube.list_nodes()
        self.nodes = {n.name: n for n in nodes}
        self.connected = peer_addresses(nodes, me)
        if not await self.router.up():
            await self.launch(seed, sorted(self.connected))
        await self.wait_router()
        await kube.set_network_available(me)
        self.metrics.set_state(self.peer, seed, len(self.nodes))
        log.info("router %s up (seed %s), peers %s", self.peer, seed, sorted(self.connected))

    async def peer_name(self) -> str:
        argv = [sys.executable, "-m", "weavenet.daemon", "--print-peer-name"]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        if proc.returncode != 0 or not out.strip():
            raise RuntimeError("weaver --print-peer-name failed: cannot name our router")
        return out.decode().strip()

    async def ipam_seed(self, kube: Kube) -> str:
        """The first agent to create the ConfigMap is the seed; a peer that was reclaimed and
        comes back under the same name starts from clean state (its old ranges are gone)."""
        for _ in range(10):
            stored = await kube.read_config()
            init = ipam_init(stored.data.get("seed"), self.peer)
            reclaimed = parse_names(stored.data.get("reclaimed"))
            recorded = stored.data.get("seed") == init.seed
            if stored.version is not None and recorded and self.peer not in reclaimed:
                return init.seed
            stored.data["seed"] = init.seed
            stored.data["reclaimed"] = join_names(p for p in reclaimed if p != self.peer)
            try:
                await kube.write_config(stored)
            except Conflict:
                continue
            if self.peer in reclaimed:
                await self.reset_state()
            return init.seed
        raise RuntimeError("ConfigMap weave-net changed 10 times in a row; giving up")

    async def reset_state(self) -> None:
        log.info("peer %s was reclaimed while away: starting with empty IPAM state", self.peer)
        await self._weave("reset", "--force")

    async def launch(self, seed: str, peers: list[str]) -> None:
        await self._weave("launch", "--ipalloc-init", f"seed={seed}", *self.cfg.launch_args, *peers)

    async def _weave(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.cfg.weave, *args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        if await proc.wait() != 0:
            raise RuntimeError(f"weave {' '.join(args)} failed (exit {proc.returncode})")

    async def wait_router(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not await self.router.up():
            if time.monotonic() > deadline:
                raise RuntimeError(f"router did not answer on {self.cfg.http_addr}")
            await asyncio.sleep(0.2)

    # --- the Node watch ------------------------------------------------------------------
    async def watch_loop(self, kube: Kube) -> None:
        while True:
            try:
                nodes, version = await kube.list_nodes()
                self._replace_nodes(nodes)
                async for kind, node in kube.watch_nodes(version, self.cfg.watch_seconds):
                    self._node_event(kind, node)
            except Exception as exc:  # the API server restarts, the watch expires: relist
                log.warning("node watch: %s; listing again", exc)
                await asyncio.sleep(1)

    def _replace_nodes(self, nodes: list[NodeView]) -> None:
        fresh = {n.name: n for n in nodes}
        if fresh != self.nodes:
            self.nodes = fresh
            self.changed.set()

    def _node_event(self, kind: str, node: NodeView) -> None:
        if kind == "DELETED":
            self.nodes.pop(node.name, None)
        else:
            self.nodes[node.name] = node
        self.changed.set()

    # --- reconciliation ------------------------------------------------------------------
    async def reconcile_loop(self, kube: Kube) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), self.cfg.resync)
            self.changed.clear()
            try:
                await self.sync_peers()
                await self.reclaim(kube)
            except Exception as exc:  # the router or the API server is down: next round
                log.warning("reconcile: %s", exc)
                self.metrics.errors.inc()

    async def sync_peers(self) -> None:
        wanted = peer_addresses(self.nodes.values(), self.cfg.node_name)
        changes = peer_changes(self.connected, wanted)
        await self.router.connect(sorted(changes.connect))
        await self.router.forget(sorted(changes.forget))
        if changes.connect or changes.forget:
            log.info(
                "peers: connect %s, forget %s", sorted(changes.connect), sorted(changes.forget)
            )
        self.connected = wanted
        self.metrics.nodes.set(len(self.nodes))

    async def candidates(self, kube: Kube) -> tuple[list[str], Stored]:
        owners = await self.router.ring_owners()
        live = {n.peer_name for n in self.nodes.values() if n.peer_name}
        stored = await kube.read_config()
        reclaimed = parse_names(stored.data.get("reclaimed"))
        return reclaim_candidates(owners, live, reclaimed, self.peer), stored

    async def reclaim(self, kube: Kube) -> None:
        found, _ = await self.candidates(kube)
        self.metrics.candidates.set(len(found))
        if not found:
            return
        lease, current = await kube.read_lease()
        action = lease_action(lease, self.cfg.node_name, time.time(), set(self.nodes))
        if action is LeaseAction.WAIT:
            log.info("reclaim of %s: %s holds the lease", found, lease.holder if lease else "?")
            return
        try:
            await kube.take_lease(self.cfg.node_name, self.cfg.lease_seconds, current)
        except Conflict:
            log.info("reclaim of %s: another node took the lease first", found)
            return
        # holding the lease: look again (another holder may have finished just before)
        found, stored = await self.candidates(kube)
        for peer in found:
            answer = await self.router.rmpeer(peer)
            log.info("reclaimed %s: %s", peer, answer)
            self.metrics.count_reclaim(peer)
        if found:
            await self.record_reclaimed(kube, stored, found)

    async def record_reclaimed(self, kube: Kube, stored: Stored, peers: list[str]) -> None:
        for _ in range(10):
            names = parse_names(stored.data.get("reclaimed"))
            stored.data["reclaimed"] = join_names([*names, *peers])
            try:
                await kube.write_config(stored)
                return
            except Conflict:
                stored = await kube.read_config()
        raise RuntimeError("could not record reclaimed peers in ConfigMap weave-net")
