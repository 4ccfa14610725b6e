"""Real container runtimes on harness hosts, using our CNI plugins.

- podman 4.3 with the CNI backend (platform.md): its own containers.conf / storage.conf
  under the host's temp dir (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), `--rootfs` with
  a static busybox, run with `nsenter --net` (runc needs the cgroup mounts that `ip netns
  exec` hides).
- containerd 1.6 (`ctr run --cni`): a containerd per host (own root, state, socket, CRI
  off); ctr reads the hard-coded /etc/cni/net.d and /opt/cni/bin, so it runs in a
  private mount namespace (`unshare -m`) where our directories are bind-mounted there.
  The containerd namespace is the cluster prefix, so CNI_CONTAINERID is `<prefix>-<name>`.

Nothing of the system's is touched: every file lives under the cluster's /tmp/<prefix>.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from weavenet.harness import Cluster, Host, run_cmd, wait_until

BUSYBOX = "/bin/busybox"
TOOLS = ("sh", "sleep", "ping", "ip", "cat")
ROOTFS_DIRS = ("bin", "proc", "dev", "sys", "etc", "tmp", "run")
START_TIMEOUT = 120.0

CTR_MOUNTS = """set -e
mount --make-rprivate /
if [ ! -d /opt/cni/bin ]; then mount -t tmpfs cn-opt /opt; mkdir -p /opt/cni/bin; fi
if [ ! -d /etc/cni/net.d ]; then mount -t tmpfs cn-etc-cni /etc/cni; mkdir -p /etc/cni/net.d; fi
mount --bind "$CN_BIN" /opt/cni/bin
mount --bind "$CN_NET" /etc/cni/net.d
exec "$@"
"""


def busybox_rootfs(where: Path) -> Path:
    """A root filesystem with a static busybox and a few applets."""
    for sub in ROOTFS_DIRS:
        (where / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, where / "bin" / "busybox")
    for tool in TOOLS:
        (where / "bin" / tool).symlink_to("busybox")
    return where


def host_net(host: Host) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{host.netns}"]


class HostRuntimes:
    """podman and containerd on one host, sharing one CNI bin dir and conflist dir."""

    def __init__(self, cluster: Cluster, host: Host) -> None:
        self.cluster, self.host = cluster, host
        self.dir = cluster.tmpdir / f"rt-{host.name}"
        self.bin, self.net = self.dir / "cni-bin", self.dir / "cni-net"
        self.rootfs = busybox_rootfs(self.dir / "rootfs")
        self.namespace = cluster.prefix
        self.socket = self.dir / "containerd" / "containerd.sock"
        self.env = {**host.env, **self._podman_files()}
        self.daemon: subprocess.Popen[bytes] | None = None
        self.foreground: dict[str, subprocess.Popen[bytes]] = {}

    def setup_cni(self) -> None:
        self.host.weave("setup-cni", "--cni-bin-dir", str(self.bin), "--cni-net-dir", str(self.net))

    def gc_flags(self, period: float = 1.0, min_age: float = 3.0) -> list[str]:
        """`weave launch` flags: collect against this host's podman and containerd."""
        return [
            "--cni-runtime",
            "podman",
            "--cni-runtime",
            f"containerd:{self.socket}:{self.namespace}",
            "--cni-gc-period",
            str(period),
            "--cni-gc-min-age",
            str(min_age),
        ]

    # --- podman --------------------------------------------------------------------------

    def _podman_files(self) -> dict[str, str]:
        d = self.dir / "podman"
        d.mkdir(parents=True)
        (d / "containers.conf").write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
            "[network]\n"
            'network_backend = "cni"\n'
            f'cni_plugin_dirs = ["{self.bin}"]\n'
            f'network_config_dir = "{self.net}"\n'
            "[engine]\n"
            f'tmp_dir = "{d}/tmp"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
        )
        (d / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{d}/graph"\nrunroot = "{d}/run"\n'
        )
        return {
            "CONTAINERS_CONF": str(d / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(d / "storage.conf"),
        }

    def podman(self, *args: str, check: bool = True, timeout: float = START_TIMEOUT) -> str:
        argv = [*host_net(self.host), "podman", *args]
        return run_cmd(argv, env=self.env, check=check, timeout=timeout).stdout

    def podman_run(self, name: str) -> str:
        """Start a podman container on the weave network; its full id."""
        out = self.podman(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "weave",
            "--rootfs",
            str(self.rootfs),
            "/bin/sleep",
            "100000",
        )
        return out.strip().splitlines()[-1]

    def podman_exec(self, name: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return run_cmd(
            [*host_net(self.host), "podman", "exec", name, *argv],
            env=self.env,
            check=False,
            timeout=60,
        )

    # --- containerd ----------------------------------------------------------------------

    def start_containerd(self) -> None:
        d = self.socket.parent
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.toml").write_text(
            "version = 2\n"
            f'root = "{d}/root"\nstate = "{d}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{d}/opt"\n'
        )
        with (d / "containerd.log").open("wb") as log:
            self.daemon = subprocess.Popen(
                [*host_net(self.host), "containerd", "--config", str(d / "config.toml")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.cluster.procs.append(self.daemon)
        wait_until(
            lambda: "Server" in self.ctr("version", check=False),
            60,
            message="containerd did not start",
        )

    def ctr(self, *args: str, check: bool = True) -> str:
        argv = ["ctr", "-a", str(self.socket), "-n", self.namespace, *args]
        return run_cmd(argv, env=self.env, check=check, timeout=60).stdout

    def _ctr_cni_argv(self, name: str, *flags: str) -> list[str]:
        """`ctr run --cni [flags] --rootfs DIR NAME sleep` (--rootfs takes no value: the
        directory is the first argument) in a private mount namespace."""
        script = self.dir / "ctr-mounts.sh"
        if not script.exists():
            script.write_text(CTR_MOUNTS)
        return [
            *host_net(self.host),
            "unshare",
            "-m",
            "sh",
            str(script),
            "ctr",
            "-a",
            str(self.socket),
            "-n",
            self.namespace,
            "run",
            "--cni",
            *flags,
            "--rootfs",
            str(self.rootfs),
            name,
            "/bin/sleep",
            "100000",
        ]

    def _ctr_env(self) -> dict[str, str]:
        return {**self.env, "CN_BIN": str(self.bin), "CN_NET": str(self.net)}

    def ctr_run(self, name: str) -> str:
        """`ctr run --cni` in the foreground (it sends DEL when the task ends); the CNI id."""
        with (self.dir / f"ctr-{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                self._ctr_cni_argv(name),
                env=self._ctr_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.cluster.procs.append(proc)
        self.foreground[name] = proc
        wait_until(
            lambda: self.task_running(name),
            START_TIMEOUT,
            message=f"ctr task {name} did not start",
            describe=self.ctr_log(name),
        )
        return f"{self.namespace}-{name}"

    def ctr_run_detached(self, name: str) -> str:
        """`ctr run -d --cni`: in containerd 1.6 no DEL ever comes for it."""
        argv = self._ctr_cni_argv(name, "-d")
        run_cmd(argv, env=self._ctr_env(), timeout=START_TIMEOUT)
        return f"{self.namespace}-{name}"

    def ctr_log(self, name: str) -> Any:
        return lambda: (self.dir / f"ctr-{name}.log").read_text(errors="replace")

    def task_running(self, name: str) -> bool:
        return any(
            line.split()[:1] == [name] and "RUNNING" in line
            for line in self.ctr("tasks", "ls", check=False).splitlines()
        )

    def ctr_exec(self, name: str, *argv: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            "ctr",
            "-a",
            str(self.socket),
            "-n",
            self.namespace,
            "tasks",
            "exec",
            "--exec-id",
            f"x{os.getpid()}",
            name,
            *argv,
        ]
        return run_cmd(cmd, check=False, timeout=60)

    def kill_task(self, name: str) -> None:
        self.ctr("tasks", "kill", "-s", "KILL", name, check=False)

    # --- teardown ------------------------------------------------------------------------

    def close(self) -> None:
        """Remove every container we made (their namespaces are podman's and runc's)."""
        self.podman("rm", "-f", "-a", "-t", "0", check=False, timeout=60)
        if self.daemon is not None and self.daemon.poll() is None:
            for line in self.ctr("tasks", "ls", check=False).splitlines()[1:]:
                self.ctr("tasks", "kill", "-s", "KILL", line.split()[0], check=False)
            for proc in self.foreground.values():
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for line in self.ctr("tasks", "ls", check=False).splitlines()[1:]:
                self.ctr("tasks", "delete", "-f", line.split()[0], check=False)
            for cid in self.ctr("containers", "ls", "-q", check=False).split():
                self.ctr("containers", "rm", cid, check=False)
        cgroup = Path("/sys/fs/cgroup") / self.namespace
        if cgroup.is_dir():
            for sub in sorted(cgroup.glob("**/"), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    sub.rmdir()
