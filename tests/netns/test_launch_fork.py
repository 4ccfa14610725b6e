"""`weave launch` forks the router from the CLI (cli/router_fork.py): the router must still
be a proper detached daemon, as the exec'd one was: it outlives the CLI, leads its own
session, has stdin on /dev/null and stdout/stderr on the log, writes its pid file, shows
as `weaver`, stops with `weave stop` and comes back with `--resume`; a router that fails
at start-up still fails the launch with its log."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from weavenet.harness import Cluster, Host, wait_until
from weavenet.harness.util import pid_alive, random_prefix


def one_host(cluster: Callable[..., Cluster]) -> Host:
    return cluster(1, prefix="su" + random_prefix()).hosts[0]


def fd_target(pid: int, fd: int) -> str:
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def check_detached(host: Host, cli_stdout: str) -> int:
    pid = host.router_pid()
    assert pid is not None, host.log()[-2000:]
    assert cli_stdout.split()[-1] == str(pid), "weave launch prints the router's pid"
    assert (host.state_dir / "weaver.pid").read_text().strip() == str(pid)
    assert os.getsid(pid) == pid, "the router leads a session of its own"
    assert os.getsid(pid) != os.getsid(0)
    assert parent_of(pid) != os.getpid()
    assert fd_target(pid, 0) == os.devnull
    log = str((host.state_dir / "weaver.log").resolve())
    assert fd_target(pid, 1) == log and fd_target(pid, 2) == log
    assert "Listening for HTTP control messages" in host.log()
    pipes = [
        fd for fd in os.listdir(f"/proc/{pid}/fd") if fd_target(pid, int(fd)).startswith("pipe:")
    ]
    assert pipes == [], "the pipe that told the CLI the router is up is closed"
    return pid


def test_forked_router_is_a_detached_daemon(cluster: Callable[..., Cluster]) -> None:
    host = one_host(cluster)
    launched = host.launch("--no-dns")
    pid = check_detached(host, launched.stdout)
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "weaver"
    assert "Peers:" in host.status(), "the router outlived the CLI and answers"
    assert host.launch(check=False).returncode == 3, "already running"

    assert host.stop().returncode == 0
    wait_until(lambda: not pid_alive(pid), timeout=15, message="router stopped")
    assert host.router_pid() is None and not (host.state_dir / "weaver.pid").exists()

    resumed = host.launch("--no-dns", "--resume")
    again = check_detached(host, resumed.stdout)
    assert again != pid
    assert "Restart/resume detected" in host.log()


def test_forked_router_does_not_show_the_password(cluster: Callable[..., Cluster]) -> None:
    host = one_host(cluster)
    pid = check_detached(host, host.launch("--no-dns", "--password", "su-s3cret").stdout)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert cmdline.startswith(b"weaver ") and b" --state-dir " in cmdline
    assert b"su-s3cret" not in cmdline
    assert "Communication between peers via untrusted networks is encrypted." in host.log()


def test_exec_path_still_works(cluster: Callable[..., Cluster]) -> None:
    host = one_host(cluster)
    launched = host.launch("--no-dns", env={"WEAVENET_LAUNCH_EXEC": "1"})
    pid = check_detached(host, launched.stdout)
    assert b"weavenet.daemon" in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_forked_router_that_fails_fails_the_launch(cluster: Callable[..., Cluster]) -> None:
    host = one_host(cluster)
    failed = host.launch("--ipalloc-range", "10.32.0.0/12", "--conn-limit", "x", check=False)
    assert failed.returncode == 1
    assert "The weave router exited with code 2" in failed.stderr  # click's usage error
    assert "--conn-limit" in failed.stderr, "the router's own error, from its log"
    assert host.router_pid() is None and not (host.state_dir / "weaver.pid").exists()


def test_a_router_without_docker_never_imports_dockers_client(
    cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    """aiohttp's client side (two TLS contexts built at import) is Docker's: with no
    Docker socket the router serves, and retries Docker's events, without it."""
    h1 = cluster(1).hosts[0]
    missing = f"unix://{tmp_path}/docker.sock"
    h1.launch("--docker-api", missing, env={"PYTHONPROFILEIMPORTTIME": "1"})
    wait_until(lambda: "Docker events: cannot reach" in h1.log(), timeout=15, message="a try")
    imported = [line.split("|")[-1].strip() for line in h1.log().splitlines() if "|" in line]
    assert "aiohttp.web" in imported
    assert not {"aiodocker", "aiohttp.client", "aiohttp.connector"} & set(imported)
