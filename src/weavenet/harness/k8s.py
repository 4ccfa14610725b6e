"""A real Kubernetes v1.20 cluster in network namespaces, for the k8s test tier.

    with K8sCluster(3) as k:
        k.start_node(0, conflist)        # containerd + kubelet in host namespace 1
        k.wait_ready(k.nodes[0].name)

Host namespace 0 of the underlying `Cluster` holds the control plane (etcd on its loopback,
kube-apiserver on its LAN address, controller-manager, scheduler); hosts 1..N are the nodes.
The test process reaches the API server from a thread inside that namespace (`KubeApi.via`),
so nothing is configured in the root namespace. Binaries come from `scripts/k8s-build.sh`
(cache outside the repository: WEAVENET_K8S_CACHE, default /var/cache/weavenet-k8s).

Teardown (also after a failed start): kubelets, the tasks of each containerd (by PID), the
containerds, mounts under the run directory, the /var/log/pods and /var/log/containers
entries of our pods, the k8s.io cgroups of our containers, the control plane, then `Cluster`.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from weavenet.harness.k8s_api import ApiError, KubeApi
from weavenet.harness.k8s_images import build_images
from weavenet.harness.k8s_node import K8sNode, our_mounts
from weavenet.harness.k8s_pki import Pki
from weavenet.harness.netns import Cluster, Host
from weavenet.harness.netns_thread import NetnsThread
from weavenet.harness.util import random_prefix, run_cmd, wait_until

DEFAULT_CACHE = Path(os.environ.get("WEAVENET_K8S_CACHE", "/var/cache/weavenet-k8s"))
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "pause")
TOOLS = ("etcd", "containerd", "runc", "ctr", "nsenter", "unshare", "openssl")
POD_LOGS = Path("/var/log/pods")
CONTAINER_LOGS = Path("/var/log/containers")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# hostPath files kubelet creates for our DaemonSet's pods (type FileOrCreate): removed at
# teardown if they were absent before the run and are still empty
HOST_FILES = (Path("/run/xtables.lock"),)


def missing_reason(cache: Path = DEFAULT_CACHE) -> str | None:
    """Why the cluster cannot start here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root"
    absent = [c for c in COMPONENTS if not (cache / "bin" / c).exists()]
    if absent:
        return f"{', '.join(absent)} not built in {cache}/bin: run scripts/k8s-build.sh"
    tools = [t for t in TOOLS if shutil.which(t) is None]
    if tools or not Path("/bin/busybox").exists():
        return f"missing tools: {' '.join([*tools, '/bin/busybox'][: len(tools) + 1])}"
    return None


class K8sCluster:
    def __init__(self, n_nodes: int = 3, cache: Path = DEFAULT_CACHE) -> None:
        self.cache = cache
        self.bin = cache / "bin"
        self.net = Cluster(n_nodes + 1, prefix="k8" + random_prefix()[2:])
        self.prefix = self.net.prefix
        self.cp_host: Host | None = None
        self.pki: Pki | None = None
        self.api: KubeApi | None = None
        self.via: NetnsThread | None = None
        self.nodes: list[K8sNode] = []
        self.images: list[Path] = []
        self._cgroups_before: set[Path] = set()
        self._container_ids: set[str] = set()
        self._control: list[subprocess.Popen[Any]] = []
        self._absent_files: list[Path] = []
        self._parents_before: set[Path] = set()
        self.closed = False

    def __enter__(self) -> K8sCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def server(self) -> str:
        assert self.cp_host is not None
        return f"https://{self.cp_host.ip}:6443"

    @property
    def dir(self) -> Path:
        return self.net.tmpdir / "k8-control"

    # --- start ---------------------------------------------------------------------------
    def start(self) -> None:
        reason = missing_reason(self.cache)
        if reason:
            raise RuntimeError(f"cannot start a Kubernetes cluster: {reason}")
        self._cgroups_before = set(_k8s_cgroups())
        self._parents_before = set(CGROUP_ROOT.glob("*/k8s.io"))
        self._absent_files = [f for f in HOST_FILES if not f.exists()]
        self.net.start()
        self.cp_host = self.net.hosts[0]
        self.dir.mkdir(parents=True)
        self.pki = Pki(self.dir / "pki", self.cp_host.ip)
        self.pki.create()
        self.images = build_images(self.cache)
        for index, host in enumerate(self.net.hosts[1:]):
            name = f"{self.prefix}-n{index + 1}"
            token = self.pki.add_token(f"system:node:{name}", "system:nodes")
            kubeconfig = self.pki.kubeconfig(self.dir / f"{name}.kubeconfig", self.server, token)
            self.nodes.append(K8sNode(host, name, self.bin, kubeconfig))
        self._start_control_plane()

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[Any]:
        assert self.cp_host is not None
        argv = ["nsenter", f"--net=/run/netns/{self.cp_host.netns}", *argv]
        with (self.dir / log).open("ab") as out:
            proc: subprocess.Popen[Any] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._control.append(proc)
        return proc

    def _start_control_plane(self) -> None:
        assert self.pki is not None and self.cp_host is not None
        pki, ip = self.pki.dir, self.cp_host.ip
        self._spawn(
            [
                "etcd",
                "--data-dir",
                str(self.dir / "etcd"),
                "--name",
                "cp",
                "--listen-client-urls",
                "http://127.0.0.1:2379",
                "--advertise-client-urls",
                "http://127.0.0.1:2379",
                "--listen-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-cluster",
                "cp=http://127.0.0.1:2380",
            ],
            "etcd.log",
        )
        self._spawn(
            [
                str(self.bin / "kube-apiserver"),
                "--etcd-servers=http://127.0.0.1:2379",
                f"--bind-address={ip}",
                f"--advertise-address={ip}",
                "--secure-port=6443",
                f"--tls-cert-file={pki}/apiserver.crt",
                f"--tls-private-key-file={pki}/apiserver.key",
                f"--client-ca-file={pki}/ca.crt",
                f"--token-auth-file={self.pki.token_file}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                "--enable-admission-plugins=NodeRestriction",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={pki}/sa.pub",
                f"--service-account-signing-key-file={pki}/sa.key",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--v=1",
            ],
            "kube-apiserver.log",
        )
        self.via = NetnsThread(self.cp_host.netns)
        self.api = KubeApi(self.server, self.pki.tokens["admin"], self.pki.ca, self.via)
        wait_until(
            self._api_ready,
            120,
            interval=0.5,
            message="kube-apiserver not ready",
            describe=lambda: self.log_tail("kube-apiserver"),
        )
        admin = self.pki.kubeconfig(
            self.dir / "admin.kubeconfig", self.server, self.pki.tokens["admin"]
        )
        self._spawn(
            [
                str(self.bin / "kube-controller-manager"),
                f"--kubeconfig={admin}",
                f"--service-account-private-key-file={pki}/sa.key",
                f"--root-ca-file={pki}/ca.crt",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
                "--controllers=*",
                "--node-monitor-grace-period=20s",
                "--v=1",
            ],
            "kube-controller-manager.log",
        )
        self._spawn(
            [
                str(self.bin / "kube-scheduler"),
                f"--kubeconfig={admin}",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
                "--v=1",
            ],
            "kube-scheduler.log",
        )

    def _api_ready(self) -> bool:
        assert self.api is not None
        try:
            self.api.get("/api/v1/namespaces/default")
        except (ApiError, OSError):
            return False
        return True

    def log_tail(self, component: str, lines: int = 20) -> str:
        try:
            text = (self.dir / f"{component}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start_node(self, index: int, conflist: dict[str, Any], plugins: list[Path]) -> K8sNode:
        """containerd (images imported) and kubelet on node `index`, with CNI `conflist`."""
        node = self.nodes[index]
        node.prepare(plugins)
        node.write_cni_conflist(f"10-{conflist['name']}.conflist", conflist)
        node.start_containerd(self.images)
        node.start_kubelet()
        return node

    def wait_ready(self, name: str, timeout: float = 120) -> None:
        assert self.api is not None
        node = next(n for n in self.nodes if n.name == name)
        wait_until(
            lambda: self.api is not None and self.api.node_ready(name),
            timeout,
            interval=0.5,
            message=f"node {name} not Ready",
            describe=lambda: node.log_tail("kubelet"),
        )

    def service_account_token(self, namespace: str, name: str, timeout: float = 60) -> str:
        """The token of ServiceAccount `name` (its auto-created Secret, as Kubernetes 1.20 has)."""
        assert self.api is not None
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}"
        api = self.api
        wait_until(
            lambda: bool(api.get(path).get("secrets")),
            timeout,
            message=f"no token Secret for ServiceAccount {namespace}/{name}",
        )
        secret_name = api.get(path)["secrets"][0]["name"]
        secret = api.get(f"/api/v1/namespaces/{namespace}/secrets/{secret_name}")
        return base64.b64decode(secret["data"]["token"]).decode()

    def kubeconfig_for(self, token: str, path: Path) -> Path:
        assert self.pki is not None
        return self.pki.kubeconfig(path, self.server, token)

    # --- teardown --------------------------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        errors: list[str] = []
        pod_uids = self._pod_uids()
        for node in self.nodes:
            with suppress(Exception):
                self._container_ids.update(
                    node.ctr("containers", "ls", "-q", check=False, timeout=10).stdout.split()
                )
        steps = [
            *(n.stop for n in self.nodes),
            self._stop_control,
            self._unmount,
            lambda: _remove_pod_logs(pod_uids, self.prefix),
            self._remove_cgroups,
            self._remove_host_files,
            self.net.close,
        ]
        for step in steps:
            try:
                step()
            except Exception as exc:  # every later step must still run
                errors.append(f"{getattr(step, '__qualname__', step)}: {exc}")
        if self.via is not None:
            self.via.close()
        if errors:
            print(f"k8s teardown of {self.prefix}: " + "; ".join(errors), file=sys.stderr)

    def _pod_uids(self) -> set[str]:
        if self.api is None:
            return set()
        try:
            pods = self.api.get("/api/v1/pods")["items"]
        except Exception:
            return set()
        return {p["metadata"]["uid"] for p in pods}

    def _stop_control(self) -> None:
        for proc in reversed(self._control):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)

    def _unmount(self) -> None:
        for point in our_mounts(self.net.tmpdir):
            run_cmd(["umount", "-l", point], check=False)

    def _remove_cgroups(self) -> None:
        for cg in sorted(set(_k8s_cgroups()) - self._cgroups_before, key=lambda p: -len(p.parts)):
            if cg.name in self._container_ids:
                with suppress(OSError):
                    cg.rmdir()
        for parent in set(CGROUP_ROOT.glob("*/k8s.io")) - self._parents_before:
            with suppress(OSError):  # still in use by someone else's containers: it stays
                parent.rmdir()

    def _remove_host_files(self) -> None:
        for path in self._absent_files:
            with suppress(OSError):
                if path.is_file() and path.stat().st_size == 0:
                    path.unlink()


def _k8s_cgroups() -> list[Path]:
    """Every /sys/fs/cgroup/<controller>/k8s.io/<id> directory."""
    return [d for d in CGROUP_ROOT.glob("*/k8s.io/*") if d.is_dir()]


def _remove_pod_logs(uids: set[str], namespace: str) -> None:
    """Pod log dirs (<ns>_<pod>_<uid>) and container log links of our pods only: those the API
    still lists, and any in this run's own namespace (named after the prefix)."""
    for d in POD_LOGS.glob("*_*_*"):
        if d.name.startswith(namespace + "_"):
            uids.add(d.name.rsplit("_", 1)[-1])
    if not uids:
        return
    for d in POD_LOGS.glob("*_*_*"):
        if d.name.rsplit("_", 1)[-1] in uids:
            shutil.rmtree(d, ignore_errors=True)
    for link in CONTAINER_LOGS.glob("*.log"):
        with suppress(OSError):
            if link.is_symlink() and any(u in os.readlink(link) for u in uids):
                link.unlink()
