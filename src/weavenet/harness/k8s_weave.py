"""The k8s tier's deployment of weavenet on the harness cluster: our manifests applied to the
API server, and on each node the DaemonSet's container run as a host process (no image can be
pulled here): `weavenet-k8s` with the DaemonSet's own command and args, authenticated with the
ServiceAccount's token, so the RBAC rules of the manifests are what it runs under."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from weavenet.cli.cni_cmds import conflist
from weavenet.harness.k8s import K8sCluster
from weavenet.harness.k8s_images import BUSYBOX_IMAGE
from weavenet.harness.k8s_node import K8sNode
from weavenet.harness.netns_thread import NetnsThread
from weavenet.harness.util import venv_bin, wait_until

REPO = Path(__file__).resolve().parents[3]
MANIFEST = REPO / "deploy" / "k8s" / "weave-net.yaml"
NAMESPACE = "kube-system"
AGENT_METRICS = "127.0.0.1:6786"
# test-speed settings on top of the DaemonSet's: quick resync and Lease, a quick CNI GC that
# asks this node's containerd which sandboxes live
AGENT_TEST_ARGS = ["--resync", "2", "--lease-seconds", "10", f"--metrics-addr={AGENT_METRICS}"]


def daemonset_container() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    container: dict[str, Any] = ds["spec"]["template"]["spec"]["containers"][0]
    return container


def agent_argv(node: K8sNode, kubeconfig: Path) -> list[str]:
    """The DaemonSet container's command line, for this node, with test settings."""
    container = daemonset_container()
    command = [str(venv_bin() / container["command"][0])]
    command += [a for a in container["command"][1:] if not a.startswith("--metrics-addr")]
    split = command.index("--")
    agent = [*command[:split], "--node-name", node.name, "--kubeconfig", str(kubeconfig)]
    router = ["--cni-runtime", f"containerd:{node.sock}:k8s.io", "--cni-gc-period", "5",
              "--cni-gc-min-age", "10"]  # fmt: skip
    return [*agent, *AGENT_TEST_ARGS, "--", *container["args"], *router]


class Deployment:
    """weavenet deployed on a K8sCluster: manifests applied, agents started node by node."""

    def __init__(self, k8s: K8sCluster) -> None:
        self.k8s = k8s
        assert k8s.api is not None
        self.api = k8s.api
        self.applied = self.api.apply_file(MANIFEST)
        token = k8s.service_account_token(NAMESPACE, "weave-net")
        self.kubeconfig = k8s.kubeconfig_for(token, k8s.dir / "weave-net.kubeconfig")
        self.agents: dict[str, subprocess.Popen[Any]] = {}
        self.threads: dict[str, NetnsThread] = {}

    def plugins(self) -> list[Path]:
        return [venv_bin() / "weave-net", venv_bin() / "weave-ipam"]

    def join(self, index: int) -> K8sNode:
        """Bring node `index` up (containerd, kubelet) and start its agent; wait for Ready."""
        node = self.k8s.start_node(index, conflist(), self.plugins())
        log = (node.dir / "agent.log").open("ab")
        self.agents[node.name] = node.host.popen(
            agent_argv(node, self.kubeconfig), stdout=log, stderr=subprocess.STDOUT
        )
        self.k8s.wait_ready(node.name, timeout=180)
        return node

    def started(self) -> list[K8sNode]:
        return [n for n in self.k8s.nodes if n.name in self.agents]

    def in_node(self, node: K8sNode) -> NetnsThread:
        if node.name not in self.threads:
            self.threads[node.name] = NetnsThread(node.host.netns)
        return self.threads[node.name]

    def http_get(self, node: K8sNode, url: str) -> str:
        def get() -> str:
            req = urllib.request.Request(url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                return str(resp.read().decode())

        return self.in_node(node).call(get)

    def report(self, node: K8sNode) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.http_get(node, "http://127.0.0.1:6784/report"))
        return data

    def agent_metric(self, node: K8sNode, name: str) -> float:
        text = self.http_get(node, f"http://{AGENT_METRICS}/metrics")
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"metric {name} not served by the agent of {node.name}")

    def stop_agent(self, node: K8sNode) -> None:
        proc = self.agents.pop(node.name)
        proc.terminate()
        proc.wait(timeout=15)
        node.host.weave("stop", check=False, timeout=30)

    def describe(self) -> str:
        lines = []
        for node in self.started():
            tail = (node.dir / "agent.log").read_text(errors="replace").splitlines()[-15:]
            lines.append(f"--- agent {node.name}:\n" + "\n".join(tail))
            lines.append(
                f"--- weaver {node.name}:\n" + "\n".join(node.host.log().splitlines()[-15:])
            )
        return "\n".join(lines)

    def close(self) -> None:
        for thread in self.threads.values():
            thread.close()


def pod_manifest(name: str, node: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "k8-test"}},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                            "command": ["/bin/sleep", "3600"]}],
        },
    }  # fmt: skip


def wait_pod_running(
    dep: Deployment, namespace: str, name: str, timeout: float = 120
) -> dict[str, Any]:
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    pod: dict[str, Any] = {}

    def running() -> bool:
        nonlocal pod
        pod = dep.api.get(path)
        return pod.get("status", {}).get("phase") == "Running" and bool(pod["status"].get("podIP"))

    wait_until(
        running,
        timeout,
        interval=0.5,
        message=f"pod {name} not Running",
        describe=lambda: json.dumps(pod.get("status", {}))[:1500] + "\n" + dep.describe(),
    )
    return pod


def container_pid(node: K8sNode, pod: dict[str, Any]) -> int:
    """The PID of the pod's (first) container, from its containerd."""
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    for line in node.ctr("tasks", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == cid:
            return int(fields[1])
    raise AssertionError(f"no task {cid} in containerd of {node.name}")


def ping_from_pod(node: K8sNode, pod: dict[str, Any], dst: str) -> bool:
    pid = container_pid(node, pod)
    argv = ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-m", "weavenet.harness.ping",
            "-c", "1", "-W", "2", dst]  # fmt: skip
    return subprocess.run(argv, capture_output=True, timeout=20).returncode == 0
