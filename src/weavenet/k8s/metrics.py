"""The agent's own metrics and state, served on --metrics-addr (/metrics, /status)."""

from __future__ import annotations

import json

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reclaims = Counter(
            "weavenet_k8s_reclaims",
            "Peers whose ranges this node took over (rmpeer).",
            registry=self.registry,
        )
        self.errors = Counter(
            "weavenet_k8s_reconcile_errors",
            "Reconciliation rounds that failed.",
            registry=self.registry,
        )
        self.nodes = Gauge("weavenet_k8s_nodes", "Nodes in the cluster.", registry=self.registry)
        self.candidates = Gauge(
            "weavenet_k8s_reclaim_candidates",
            "Peers owning ranges that no node runs and that this router cannot reach.",
            registry=self.registry,
        )
        self.state: dict[str, object] = {}
        self.reclaimed_peers: list[str] = []
        self._runner: web.AppRunner | None = None

    def set_state(self, peer: str, seed: str, nodes: int) -> None:
        self.state = {"peer": peer, "seed": seed}
        self.nodes.set(nodes)

    def count_reclaim(self, peer: str) -> None:
        self.reclaims.inc()
        self.reclaimed_peers.append(peer)

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def _status(self, _: web.Request) -> web.Response:
        state = {**self.state, "reclaimed": self.reclaimed_peers}
        return web.Response(text=json.dumps(state), content_type="application/json")

    async def serve(self, addr: str) -> None:
        if not addr:
            return
        host, _, port = addr.rpartition(":")
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/status", self._status)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, host or "0.0.0.0", int(port)).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
