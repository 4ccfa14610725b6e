"""One Kubernetes node of the test cluster: a containerd and a kubelet in a host namespace.

Both run with ``nsenter --net`` (``ip netns exec`` remounts /sys and hides the cgroup mounts);
containerd in its own mount namespace (slave propagation: it sees the kubelet's volume mounts,
its own rootfs and netns mounts stay private to it and vanish with it), with its root, state,
socket and netns mounts under this run's directory.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from weavenet.harness.netns import Host
from weavenet.harness.util import run_cmd, wait_until

CNI_PLUGIN_DIR = Path("/usr/lib/cni")


def _containerd_toml(root: Path, cni_bin: Path, cni_conf: Path) -> str:
    return f"""version = 2
root = "{root}/root"
state = "{root}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{root}/c.sock"
[ttrpc]
  address = "{root}/c.ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.gcr.io/pause:3.2"
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
"""


def kubelet_config(ip: str, resolv: Path) -> dict[str, Any]:
    return {
        "kind": "KubeletConfiguration",
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "address": ip,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "resolvConf": str(resolv),
        "nodeStatusUpdateFrequency": "4s",
        "serializeImagePulls": False,
        # the host's disk is shared with the whole machine: never evict or GC our images
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
    }


class K8sNode:
    """containerd + kubelet for `host`, registering as node `name`."""

    def __init__(self, host: Host, name: str, bin_dir: Path, kubeconfig: Path) -> None:
        self.host = host
        self.name = name
        self.bin_dir = bin_dir
        self.kubeconfig = kubeconfig
        self.dir = host.cluster.tmpdir / f"k8-{host.name}"
        self.cni_conf = self.dir / "net.d"
        self.cni_bin = self.dir / "cni-bin"
        self.sock = self.dir / "containerd" / "c.sock"
        self.containerd: subprocess.Popen[Any] | None = None
        self.kubelet: subprocess.Popen[Any] | None = None

    def nsenter(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.host.netns}", *argv]

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[Any]:
        with (self.dir / log).open("ab") as out:
            proc: subprocess.Popen[Any] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.host.env,
            )
        self.host.cluster.procs.append(proc)
        return proc

    def prepare(self, plugins: list[Path]) -> None:
        """Directories; the CNI bin dir: the reference plugins and `plugins` (ours), linked."""
        for d in (self.dir, self.cni_conf, self.cni_bin, self.dir / "containerd"):
            d.mkdir(parents=True, exist_ok=True)
        absent = [str(p) for p in plugins if not p.exists()]
        if absent:
            raise FileNotFoundError(f"CNI plugins not installed: {absent} (make venv)")
        for plugin in [*CNI_PLUGIN_DIR.iterdir(), *plugins]:
            link = self.cni_bin / plugin.name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(plugin)
        (self.dir / "resolv.conf").write_text("nameserver 127.0.0.1\n")

    def write_cni_conflist(self, name: str, conflist: dict[str, Any]) -> None:
        (self.cni_conf / name).write_text(json.dumps(conflist, indent=1))

    def start_containerd(self, images: list[Path]) -> None:
        toml = self.dir / "containerd.toml"
        toml.write_text(_containerd_toml(self.dir / "containerd", self.cni_bin, self.cni_conf))
        argv = ["unshare", "-m", "--propagation", "slave", "containerd", "--config", str(toml)]
        self.containerd = self._spawn(self.nsenter(argv), "containerd.log")
        wait_until(
            lambda: self.ctr("version", check=False).returncode == 0,
            30,
            message=f"containerd of {self.name} did not answer on {self.sock}",
        )
        for image in images:
            self.ctr("images", "import", str(image), timeout=120)

    def ctr(self, *args: str, check: bool = True, timeout: float = 30) -> Any:
        argv = ["ctr", "--address", str(self.sock), "--namespace", "k8s.io", *args]
        return run_cmd(argv, check=check, timeout=timeout)

    def start_kubelet(self) -> None:
        conf = self.dir / "kubelet.json"
        conf.write_text(json.dumps(kubelet_config(self.host.ip, self.dir / "resolv.conf")))
        argv = [
            str(self.bin_dir / "kubelet"),
            "--config",
            str(conf),
            "--kubeconfig",
            str(self.kubeconfig),
            "--container-runtime=remote",
            f"--container-runtime-endpoint=unix://{self.sock}",
            "--root-dir",
            str(self.dir / "kubelet"),
            "--cert-dir",
            str(self.dir / "pki"),
            f"--hostname-override={self.name}",
            f"--node-ip={self.host.ip}",
            "--v=1",
        ]
        self.kubelet = self._spawn(self.nsenter(argv), "kubelet.log")

    def stop_kubelet(self) -> None:
        _stop(self.kubelet)

    def stop(self) -> None:
        """Kubelet, then every task containerd runs (by the PIDs it reports), then containerd."""
        self.stop_kubelet()
        if self.containerd is not None and self.containerd.poll() is None:
            self._kill_tasks()
        _stop(self.containerd)

    def _kill_tasks(self) -> None:
        listing = self.ctr("tasks", "ls", check=False, timeout=15)
        for line in listing.stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                self.ctr("tasks", "kill", "-s", "SIGKILL", "-a", fields[0], check=False)
        for line in listing.stdout.splitlines()[1:]:
            if line.split():
                self.ctr("tasks", "delete", "-f", line.split()[0], check=False, timeout=15)

    def log_tail(self, which: str, lines: int = 30) -> str:
        try:
            text = (self.dir / f"{which}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def task_pids(self) -> list[int]:
        listing = self.ctr("tasks", "ls", check=False, timeout=15)
        return [
            int(f[1])
            for f in (ln.split() for ln in listing.stdout.splitlines()[1:])
            if len(f) >= 2 and f[1].isdigit()
        ]


def _stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def our_mounts(root: Path) -> list[str]:
    """Mount points under `root` in our mount namespace, deepest first."""
    points = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].replace("\\040", " ")
            if point == str(root) or point.startswith(str(root) + os.sep):
                points.append(point)
    return sorted(points, key=len, reverse=True)
