"""Self-check of the Docker harness: daemons per host, separate plugin dirs, full teardown."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from weavenet.harness import wait_until
from weavenet.harness.docker import BUSYBOX_IMAGE, PLUGIN_DIR, DockerCluster
from weavenet.harness.util import pid_alive, run_cmd


def test_each_host_has_its_own_daemon_and_plugin_dir(
    docker_cluster: Callable[..., DockerCluster],
) -> None:
    c = docker_cluster(2, launch=False)
    d1, d2 = c.docker_hosts
    d1.run_in_host(["touch", f"{PLUGIN_DIR}/only-on-h1"])
    assert (d1.plugins_dir / "only-on-h1").exists()
    assert not (d2.plugins_dir / "only-on-h1").exists()
    assert not Path(PLUGIN_DIR, "only-on-h1").exists(), "the bind mount leaked into the host"
    out = d1.docker("run", "--rm", "--name", "hello", BUSYBOX_IMAGE, "echo", "hi").stdout
    assert out.strip() == "hi"
    assert d2.docker("ps", "-aq").stdout.strip() == ""
    # the daemon lives in the host's network namespace
    pid = d1.daemon_pid()
    assert pid is not None
    assert d1.host.owns_pid(pid)


def test_daemon_restart_keeps_containers_and_teardown_removes_everything(
    docker_cluster: Callable[..., DockerCluster],
) -> None:
    c = docker_cluster(1, launch=False)
    (d1,) = c.docker_hosts
    d1.docker("run", "-d", "--restart", "always", "--name", "top", BUSYBOX_IMAGE, "sleep", "600")
    first = d1.container_pid("top")
    d1.restart_daemon()
    second = wait_until(lambda: d1.container_pid("top"), 30, message="top not restarted")
    assert second != first
    keeper = d1.keeper_pid
    assert keeper is not None
    c.close()
    assert not pid_alive(second), "a container process survived teardown"
    assert not pid_alive(keeper)
    assert not d1.dir.exists()
    assert not any(
        p.name.endswith(d1.cgroup_parent[1:]) for p in Path("/sys/fs/cgroup").glob("*/*")
    )
    assert os.path.isdir(PLUGIN_DIR)


MASQUERADE_DOCKER0 = "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"


def _root_nat_rules() -> set[str]:
    out = run_cmd(["iptables", "-t", "nat", "-S"], check=False).stdout
    return set(out.splitlines())


def test_a_stock_daemon_keeps_docker0_and_its_iptables_inside_the_host(
    docker_cluster: Callable[..., DockerCluster],
) -> None:
    before = _root_nat_rules()
    c = docker_cluster(1, launch=False, stock_network=True)
    (d1,) = c.docker_hosts
    out = d1.docker("run", "--rm", BUSYBOX_IMAGE, "ip", "-o", "-4", "addr", "show", "eth0")
    assert " inet 172.17." in out.stdout, "a plain docker run is on docker0"
    host_rules = d1.run_in_host(["iptables", "-t", "nat", "-S"]).stdout.splitlines()
    assert MASQUERADE_DOCKER0 in host_rules
    assert d1.run_in_host(["ip", "link", "show", "docker0"], check=False).returncode == 0
    added = _root_nat_rules() - before
    assert MASQUERADE_DOCKER0 not in added, "the daemon wrote iptables outside its namespace"
