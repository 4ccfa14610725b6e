"""A small synchronous client for the test cluster's API server (tests and harness only; the
agent uses kubernetes_asyncio): JSON over HTTPS with a bearer token, and `apply` of manifests."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from weavenet.harness.netns_thread import NetnsThread

# kind -> (API path prefix, plural, namespaced)
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Pod": ("/api/v1", "pods", True),
    "Node": ("/api/v1", "nodes", False),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "DaemonSet": ("/apis/apps/v1", "daemonsets", True),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases", True),
}


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status


class KubeApi:
    def __init__(self, server: str, token: str, ca: Path, via: NetnsThread | None = None) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.context = ssl.create_default_context(cafile=str(ca))
        self.via = via  # the API server lives in a namespace: connect from a thread inside it

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 15.0,
    ) -> Any:
        if self.via is not None:
            return self.via.call(self._request, method, path, body, content_type, timeout)
        return self._request(method, path, body, content_type, timeout)

    def _request(self, method: str, path: str, body: Any, content_type: str, timeout: float) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.context) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, method, path, exc.read().decode(errors="replace")) from None
        return json.loads(text) if text else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def patch_merge(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body, "application/merge-patch+json")

    @staticmethod
    def path_for(kind: str, name: str = "", namespace: str = "") -> str:
        if kind not in _KINDS:
            raise ValueError(f"kind {kind!r} unknown to the test client (add it to _KINDS)")
        prefix, plural, namespaced = _KINDS[kind]
        base = (
            f"{prefix}/namespaces/{namespace or 'default'}/{plural}"
            if namespaced
            else (f"{prefix}/{plural}")
        )
        return f"{base}/{name}" if name else base

    def create(self, obj: dict[str, Any]) -> Any:
        meta = obj.get("metadata", {})
        return self.request("POST", self.path_for(obj["kind"], "", meta.get("namespace", "")), obj)

    def apply_file(self, path: Path) -> list[Any]:
        """Create every document of a YAML file (the API server validates each)."""
        return [self.create(doc) for doc in yaml.safe_load_all(path.read_text()) if doc]

    def nodes(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/nodes")["items"])

    def node_ready(self, name: str) -> bool:
        try:
            node = self.get(f"/api/v1/nodes/{name}")
        except ApiError:
            return False
        return condition(node, "Ready") == "True"


def condition(obj: dict[str, Any], kind: str) -> str | None:
    """The status of condition `kind` on a Node or Pod ("True"/"False"/"Unknown"), or None."""
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None
