"""The agent's Kubernetes API calls, on kubernetes_asyncio, returning the core's plain views.

Objects it uses: its Node (peer-name annotation, NetworkUnavailable condition), the Node list
and watch, the ConfigMap ``weave-net`` (seed, reclaimed peers) and the Lease
``weave-net-reclaim`` in the agent's namespace.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from weavenet.core.kube.reclaim import LeaseView, NodeView

PEER_ANNOTATION = "weave.works/peer-name"
CONFIGMAP = "weave-net"
LEASE = "weave-net-reclaim"


class Conflict(Exception):
    """Somebody else changed or created the object first (HTTP 409)."""


class Stored(msgspec.Struct):
    """A ConfigMap's data with the version it was read at (None: it does not exist)."""

    data: dict[str, str]
    version: str | None


def node_view(node: Any) -> NodeView:
    addresses = node.status.addresses if node.status and node.status.addresses else []
    ip = next((a.address for a in addresses if a.type == "InternalIP"), None)
    annotations = node.metadata.annotations or {}
    return NodeView(node.metadata.name, ip, annotations.get(PEER_ANNOTATION))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def connect(kubeconfig: str | None) -> client.ApiClient:
    """An API client from `kubeconfig`, or from the pod's service account."""
    if kubeconfig:
        cfg = client.Configuration()
        await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        return client.ApiClient(cfg)
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class Kube:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.coord = client.CoordinationV1Api(api)
        self.namespace = namespace

    async def node(self, name: str) -> NodeView | None:
        try:
            return node_view(await self.core.read_node(name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def annotate_peer(self, node: str, peer: str) -> None:
        body = {"metadata": {"annotations": {PEER_ANNOTATION: peer}}}
        await self.core.patch_node(node, body)

    async def set_network_available(self, node: str) -> None:
        now = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {
            "type": "NetworkUnavailable",
            "status": "False",
            "reason": "WeaveIsUp",
            "message": "weavenet router is up",
            "lastTransitionTime": now,
            "lastHeartbeatTime": now,
        }
        await self.core.patch_node_status(node, {"status": {"conditions": [condition]}})

    async def list_nodes(self) -> tuple[list[NodeView], str]:
        nodes = await self.core.list_node()
        return [node_view(n) for n in nodes.items], nodes.metadata.resource_version

    async def watch_nodes(self, version: str, seconds: int) -> AsyncIterator[tuple[str, NodeView]]:
        """(event type, node) from `version` on, for at most `seconds`."""
        async with watch.Watch() as w:
            stream = w.stream(
                self.core.list_node, resource_version=version, timeout_seconds=seconds
            )
            async for event in stream:
                if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    yield event["type"], node_view(event["object"])

    # --- the ConfigMap: seed and reclaimed peers ----------------------------------------
    async def read_config(self) -> Stored:
        try:
            cm = await self.core.read_namespaced_config_map(CONFIGMAP, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return Stored({}, None)
            raise
        return Stored(dict(cm.data or {}), cm.metadata.resource_version)

    async def write_config(self, stored: Stored) -> None:
        """Create (version None) or replace at the version read; Conflict if it moved."""
        meta = client.V1ObjectMeta(name=CONFIGMAP, resource_version=stored.version)
        body = client.V1ConfigMap(metadata=meta, data=stored.data)
        try:
            if stored.version is None:
                await self.core.create_namespaced_config_map(self.namespace, body)
            else:
                await self.core.replace_namespaced_config_map(CONFIGMAP, self.namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(CONFIGMAP) from None
            raise

    # --- the reclaim Lease ---------------------------------------------------------------
    async def read_lease(self) -> tuple[LeaseView | None, Any]:
        try:
            lease = await self.coord.read_namespaced_lease(LEASE, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None, None
            raise
        spec = lease.spec
        renewed = spec.renew_time.timestamp() if spec.renew_time else None
        return LeaseView(
            spec.holder_identity, renewed, float(spec.lease_duration_seconds or 0)
        ), lease

    async def take_lease(self, me: str, duration: int, current: Any) -> None:
        """Create the Lease, or replace `current` at its version; Conflict if we lost."""
        now = _now()
        spec = client.V1LeaseSpec(
            holder_identity=me, lease_duration_seconds=duration, renew_time=now, acquire_time=now
        )
        try:
            if current is None:
                body = client.V1Lease(metadata=client.V1ObjectMeta(name=LEASE), spec=spec)
                await self.coord.create_namespaced_lease(self.namespace, body)
            else:
                if current.spec.holder_identity == me and current.spec.acquire_time:
                    spec.acquire_time = current.spec.acquire_time
                current.spec = spec
                await self.coord.replace_namespaced_lease(LEASE, self.namespace, current)
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(LEASE) from None
            raise
