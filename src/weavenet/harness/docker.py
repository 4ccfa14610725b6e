"""A real Docker daemon per emulated host, for the Docker tier (tests/docker) and the demo.

    with DockerCluster(2) as cluster:            # a Cluster whose hosts each run a dockerd
        d1, d2 = cluster.docker_hosts
        d1.launch()                              # `weave launch` inside d1's namespaces
        d2.launch(d1.ip)
        cid = d1.docker("run", "-d", "--net=weave", BUSYBOX_IMAGE, "sleep", "1000").stdout

Each `DockerHost` wraps one `Host` of the Cluster and adds:

- a **mount namespace** held by a keeper process (`unshare -m --propagation slave sleep
  infinity`; slave so /run/netns mounts made later still appear inside), in which
  `/run/docker/plugins` and `/var/run/weave` are bind mounts of per-host directories
  (`plugins_dir`, `weave_run_dir`): Docker finds plugins only in the fixed directory, so two
  hosts' `weavemesh.sock` must not meet;
- **dockerd** (Debian's /usr/sbin/dockerd) started with `nsenter --mount=... --net=...`
  (never `ip netns exec`, which hides the cgroup mounts), `--bridge=none --iptables=false
  --ip6tables=false`, its own socket, data root, exec root, pid file and cgroup parent;
  with `stock_network=True` instead Docker's defaults: its `docker0` bridge and its
  iptables rules, both inside the host's network namespace (what a Weave user's daemon
  does; the benchmark's baseline);
- the image `BUSYBOX_IMAGE`, `docker import`ed from Debian's busybox-static.

Everything run "in the host" runs in its network namespace *and* its mount namespace.

API (all synchronous; `CompletedProcess[str]` results; `check=True` raises CommandError):

    docker_unusable_reason() -> str | None       why this tier cannot run here (None: it can)
    BUSYBOX_IMAGE, DOCKER, DOCKERD                image name; client and daemon binaries
    DockerCluster(n_hosts, prefix=None, underlay=None, start_daemons=True,
                  stock_network=False, daemon_args=())   (a Cluster)
        .docker_hosts: list[DockerHost]          one per cluster host, same order
        close()                                   docker hosts first, then the Cluster
    DockerHost(host: Host, root: Path, stock_network=False, daemon_args=())
        .host, .name, .ip, .dir, .socket, .docker_host ("unix://<socket>"), .env
        .plugins_dir, .weave_run_dir, .keeper_pid, .cgroup_parent, .launched
        start()                                   keeper + mounts + daemon + image
        nsenter_argv(argv) -> list[str]           argv wrapped to run in the host's namespaces
        run_in_host(argv, check=True, timeout=30, env=None, input=None)
        popen(argv, **popen_kwargs) -> Popen      background, killed at teardown
        docker(*args, check=True, timeout=60, env=None, input=None)   Debian's docker CLI
        weave(*args, check=True, timeout=30, env=None)                the venv's weave
        launch(*args, check=True, env=None)        `weave launch --nickname hN ARGS`
        router_pid() -> int | None
        start_daemon(timeout=60) / stop_daemon(timeout=30) / restart_daemon()
        daemon_pid() -> int | None
        container_pid(name) -> int                State.Pid (0 when not running)
        inspect(name) -> dict                     `docker inspect` of one container
        close() -> list[str]                      containers, router, daemon, processes in
                                                  the mount namespace, cgroups, keeper, dirs
                                                  (returns the errors met)

In the host, /run/docker/plugins/weavemesh.sock is the plugin socket and /var/run/weave
is the per-host `weave_run_dir` (the proxy's socket directory). /run/containerd is masked
by an empty directory, so each dockerd starts its own containerd under its exec root.

The environment `env` has DOCKER_HOST pointing at this host's daemon (as `weave launch`
reads it, like Weave's script) and WEAVE_STATE_DIR for the host's router. Teardown runs
every step even when an earlier one fails and is safe to repeat.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weavenet.harness.netns import Cluster, Host, kill_pids
from weavenet.harness.util import pid_alive, run_cmd, venv_bin, wait_until

DOCKER = "/usr/bin/docker"  # Debian's client: /usr/local/bin/docker may be another one
DOCKERD = "/usr/sbin/dockerd"
BUSYBOX = "/bin/busybox"  # busybox-static
BUSYBOX_IMAGE = "weavenet-busybox:latest"
PLUGIN_DIR = "/run/docker/plugins"
WEAVE_RUN_DIR = "/run/weave"  # /var/run is a symlink to /run
# masked by an empty dir, or dockerd would use a containerd another test started there
CONTAINERD_DIR = "/run/containerd"
CGROUP_ROOT = Path("/sys/fs/cgroup")
DAEMON_READY_TIMEOUT = 60.0


@functools.cache
def docker_unusable_reason() -> str | None:
    """Why real Docker daemons cannot run here, or None ("make test-docker" installs them)."""
    if os.geteuid() != 0:
        return "needs root"
    for path, package in (
        (DOCKER, "docker.io"),
        (DOCKERD, "docker.io"),
        (BUSYBOX, "busybox-static"),
    ):
        if not os.access(path, os.X_OK):
            return f"needs {path} (Debian package {package}; `make test-docker` installs it)"
    for tool in ("unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux)"
    return None


def _busybox_tarball(path: Path) -> Path:
    """A root filesystem tarball: /bin/busybox, a symlink per applet, /etc, /tmp."""
    applets = run_cmd([BUSYBOX, "--list"]).stdout.split()
    with tarfile.open(path, "w") as tar:
        for name in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return path


class DockerHost:
    """One emulated host's Docker daemon, in the host's netns and a mount namespace of its own."""

    def __init__(
        self,
        host: Host,
        root: Path,
        stock_network: bool = False,
        daemon_args: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.stock_network = stock_network  # docker0 + iptables (in the host's netns)
        self.daemon_args = tuple(daemon_args)  # more dockerd flags, e.g. --debug
        self.name = host.name
        self.ip = host.ip
        self.dir = root
        self.plugins_dir = root / "plugins"
        self.weave_run_dir = root / "weave-run"
        self.socket = root / "docker.sock"
        self.docker_host = f"unix://{self.socket}"
        self.cgroup_parent = f"/{host.netns}-dp-docker"
        self.env = {**host.env, "DOCKER_HOST": self.docker_host}
        self.keeper_pid: int | None = None
        self._keeper: subprocess.Popen[bytes] | None = None
        self._mnt_ns: tuple[int, int] | None = None
        self._daemon: subprocess.Popen[bytes] | None = None
        self._procs: list[subprocess.Popen[Any]] = []
        self.launched = False

    def __repr__(self) -> str:
        return f"DockerHost({self.name!r}, socket={str(self.socket)!r})"

    # --- set-up --------------------------------------------------------------------------
    def start(self) -> None:
        for d in (
            self.plugins_dir,
            self.weave_run_dir,
            self.dir / "data",
            self.dir / "containerd-mask",
        ):
            d.mkdir(parents=True, exist_ok=True)
        self._start_keeper()
        self.start_daemon()
        self._import_image()

    def _start_keeper(self) -> None:
        for d in (PLUGIN_DIR, WEAVE_RUN_DIR, CONTAINERD_DIR):  # mount points in the shared /run
            Path(d).mkdir(parents=True, exist_ok=True)
        self._keeper = subprocess.Popen(
            ["unshare", "-m", "--propagation", "slave", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.keeper_pid = self._keeper.pid
        own = os.stat("/proc/self/ns/mnt")

        def unshared() -> tuple[int, int] | None:
            st = os.stat(f"/proc/{self._keeper.pid}/ns/mnt")  # type: ignore[union-attr]
            return None if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino) else (
                st.st_dev, st.st_ino)  # fmt: skip

        self._mnt_ns = wait_until(unshared, 10, 0.02, "keeper did not unshare its mount ns")
        mounts = ((self.plugins_dir, PLUGIN_DIR), (self.weave_run_dir, WEAVE_RUN_DIR),
                  (self.dir / "containerd-mask", CONTAINERD_DIR))  # fmt: skip
        for src, dst in mounts:
            run_cmd([*self._enter(net=False), "mount", "--bind", str(src), dst])

    def _enter(self, net: bool = True) -> list[str]:
        if self.keeper_pid is None:
            raise RuntimeError(f"{self!r} is not started")
        argv = ["nsenter", f"--mount=/proc/{self.keeper_pid}/ns/mnt"]
        return [*argv, f"--net=/run/netns/{self.host.netns}"] if net else argv

    def nsenter_argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` wrapped to run in this host's network and mount namespaces."""
        return [*self._enter(), *map(str, argv)]

    # --- the daemon ----------------------------------------------------------------------
    def _daemon_argv(self) -> list[str]:
        no_network = ["--bridge=none", "--iptables=false", "--ip6tables=false"]
        return [
            DOCKERD, *([] if self.stock_network else no_network),
            "-H", self.docker_host, "--data-root", str(self.dir / "data"),
            "--exec-root", str(self.dir / "exec"), "--pidfile", str(self.dir / "dockerd.pid"),
            "--cgroup-parent", self.cgroup_parent, "--containerd-namespace", self.host.netns,
            "--containerd-plugins-namespace", f"{self.host.netns}-plugins", *self.daemon_args,
        ]  # fmt: skip

    def start_daemon(self, timeout: float = DAEMON_READY_TIMEOUT) -> None:
        """Start dockerd (if not running) and wait until `docker version` answers."""
        if self.daemon_pid() is not None:
            return
        with (self.dir / "dockerd.log").open("ab") as log:
            self._daemon = subprocess.Popen(
                self.nsenter_argv(self._daemon_argv()),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(
            self._daemon_answers,
            timeout,
            0.1,
            f"dockerd of {self.name} did not answer on {self.socket}",
            describe=self._daemon_log_tail,
        )

    def _daemon_answers(self) -> bool:
        if self._daemon is not None and self._daemon.poll() is not None:
            raise RuntimeError(f"dockerd exited {self._daemon.returncode}")
        proc = self.docker("version", "--format", "{{.Server.Version}}", check=False, timeout=10)
        return proc.returncode == 0 and bool(proc.stdout.strip())

    def _daemon_log_tail(self) -> str:
        try:
            return (self.dir / "dockerd.log").read_text(errors="replace")[-3000:]
        except OSError:
            return "(no dockerd.log)"

    def daemon_pid(self) -> int | None:
        if self._daemon is None or self._daemon.poll() is not None:
            return None
        return self._daemon.pid

    def stop_daemon(self, timeout: float = 30.0) -> None:
        """SIGTERM dockerd (it stops its containers, as on a host shutdown) and wait."""
        proc, self._daemon = self._daemon, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def restart_daemon(self) -> None:
        self.stop_daemon()
        self.start_daemon()

    def _import_image(self) -> None:
        if self.docker("image", "inspect", BUSYBOX_IMAGE, check=False).returncode == 0:
            return
        tarball = _busybox_tarball(self.dir / "busybox.tar")
        self.docker("import", "-c", 'CMD ["/bin/sh"]', str(tarball), BUSYBOX_IMAGE, timeout=120)
        tarball.unlink()

    # --- running things in the host ------------------------------------------------------
    def run_in_host(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in this host's network + mount namespaces with `self.env` (+ `env`)."""
        full_env = {**self.env, **(env or {})}
        return run_cmd(
            self.nsenter_argv(argv), check=check, timeout=timeout, env=full_env, input=input
        )

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """A background process in the host's namespaces; it is killed at teardown."""
        kwargs.setdefault("env", self.env)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("start_new_session", True)
        proc: subprocess.Popen[Any] = subprocess.Popen(self.nsenter_argv(argv), **kwargs)
        self._procs.append(proc)
        return proc

    def docker(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Debian's docker CLI against this host's daemon (DOCKER_HOST from `env` wins)."""
        return self.run_in_host([DOCKER, *args], check, timeout, env, input)

    def weave(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self.run_in_host([str(venv_bin() / "weave"), *args], check, timeout, env)

    def launch(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`weave launch ARGS` in this host (adds `--nickname <host name>` unless given)."""
        argv = list(args)
        if not any(a == "--nickname" or a.startswith("--nickname=") for a in argv):
            argv = ["--nickname", self.name, *argv]
        self.launched = self.host.launched = True
        return self.weave("launch", *argv, check=check, timeout=90, env=env)

    def router_pid(self) -> int | None:
        return self.host.router_pid()

    def inspect(self, name: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self.docker("inspect", name).stdout)
        return data[0]

    def container_pid(self, name: str) -> int:
        return int(self.inspect(name)["State"]["Pid"] or 0)

    # --- teardown ------------------------------------------------------------------------
    def close(self) -> list[str]:
        """Tear everything down; returns the errors met (each step runs regardless)."""
        errors: list[str] = []
        # containers first: removing one calls the plugin, which lives in the router
        steps = (self._remove_containers, self._stop_router, self.stop_daemon,
                 self._kill_namespace_procs, self._clear_cgroups, self._stop_keeper)  # fmt: skip
        for step in steps:
            try:
                step()
            except Exception as exc:  # keep going: later steps must still run
                errors.append(f"{self.name} {step.__name__}: {exc}")
        shutil.rmtree(self.dir, ignore_errors=True)
        return errors

    def _stop_router(self) -> None:
        if self.keeper_pid is None or not (self.launched or self.router_pid()):
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.weave("stop", check=False, timeout=20)
        pid = self.router_pid()
        if pid is not None:
            kill_pids([pid])

    def _remove_containers(self) -> None:
        if self.daemon_pid() is None:
            return
        ids = self.docker("ps", "-aq", check=False, timeout=20).stdout.split()
        if ids:
            self.docker("rm", "-f", *ids, check=False, timeout=60)

    def _kill_namespace_procs(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        self._procs.clear()
        if self._mnt_ns is None or self._keeper is None:
            return
        pids = [p for p in _pids_in_mount_ns(self._mnt_ns) if p != self._keeper.pid]
        kill_pids(pids)

    def _clear_cgroups(self) -> None:
        """Kill whatever is left in our cgroup parent (container processes), remove it."""
        for top in CGROUP_ROOT.glob(f"*{self.cgroup_parent}"):
            groups = [*sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True), top]
            pids = [int(x) for g in groups for x in _read(g / "cgroup.procs").split()]
            kill_pids([p for p in pids if pid_alive(p)])
            for group in groups:
                with contextlib.suppress(OSError):
                    group.rmdir()

    def _stop_keeper(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None and keeper.poll() is None:
            keeper.kill()
            keeper.wait(timeout=10)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _pids_in_mount_ns(ns: tuple[int, int]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(entry / "ns" / "mnt")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == ns:
            found.append(int(entry.name))
    return found


class DockerCluster(Cluster):
    """A Cluster whose every host runs its own dockerd (see the module docstring)."""

    def __init__(
        self,
        n_hosts: int,
        prefix: str | None = None,
        underlay: str | None = None,
        start_daemons: bool = True,
        stock_network: bool = False,
        daemon_args: Sequence[str] = (),
    ) -> None:
        super().__init__(n_hosts, prefix, underlay)
        self.start_daemons = start_daemons
        self.stock_network = stock_network
        self.daemon_args = tuple(daemon_args)
        self.docker_hosts: list[DockerHost] = []

    def _setup(self) -> None:
        super()._setup()
        for host in self.hosts:
            root = self.tmpdir / f"dp-{host.name}-docker"
            dh = DockerHost(host, root, self.stock_network, self.daemon_args)
            self.docker_hosts.append(dh)
            if self.start_daemons:
                dh.start()

    def close(self) -> None:
        if self.closed:
            return
        errors = [e for dh in self.docker_hosts for e in dh.close()]
        if errors:
            print(f"docker teardown of {self.prefix}: " + "; ".join(errors))
        super().close()
