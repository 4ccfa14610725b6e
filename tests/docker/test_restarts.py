"""Acceptance 3: a container attached by the plugin or by `weave attach` keeps its address
and its name across `docker restart`, a router kill -9 + `weave launch --resume` and a
Docker daemon restart (restart policy); `docker rm -f` frees the address and the name."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from tests.docker.helpers import (
    dns_lookup,
    ipam_ips,
    run_plain_container,
    run_plugin_container,
    wait_ping,
    weave_ip,
)
from weavenet.harness import wait_until
from weavenet.harness.docker import DockerCluster, DockerHost
from weavenet.harness.util import pid_alive

REACH_TIMEOUT = 15.0
GONE_TIMEOUT = 5.0


def start_web(dh: DockerHost, way: str) -> str:
    """Container `web` with a restart policy, attached the given way; its full id."""
    if way == "plugin":
        return run_plugin_container(dh, "web", "--restart=always")
    cid = run_plain_container(dh, "web", "--restart=always")
    dh.weave("attach", "--name", "web", cid)
    return cid


def assert_same(d1: DockerHost, d2: DockerHost, cid: str, ip: str, what: str) -> None:
    """Same address inside web, under its id in IPAM, in DNS, reachable from h2."""
    wait_until(lambda: weave_ip(d1, "web", timeout=REACH_TIMEOUT) == ip, REACH_TIMEOUT, 0.2,
               f"web lost its address {ip} after {what}")  # fmt: skip
    wait_ping(d2, "peer", ip, REACH_TIMEOUT)
    assert ipam_ips(d1, cid) == [ip], f"IPAM after {what}"
    wait_until(lambda: dns_lookup(d2, "web") == [ip], REACH_TIMEOUT, 0.2,
               f"web's name after {what}")  # fmt: skip


def kill_router(dh: DockerHost) -> None:
    pid = dh.router_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 10, message="router survived kill -9")


@pytest.mark.parametrize("way", ["plugin", "attach"])
def test_restarts_keep_address_and_name_and_rm_frees_them(
    docker_cluster: Callable[..., DockerCluster], way: str
) -> None:
    d1, d2 = docker_cluster(2).docker_hosts
    run_plugin_container(d2, "peer")
    cid = start_web(d1, way)
    ip = weave_ip(d1, "web")
    assert_same(d1, d2, cid, ip, "start")

    d1.docker("restart", "-t", "1", "web")
    assert_same(d1, d2, cid, ip, "docker restart")

    d1.docker("stop", "-t", "1", "web")
    d1.docker("start", "web")
    assert_same(d1, d2, cid, ip, "docker stop + start")

    kill_router(d1)
    d1.launch("--resume")
    assert_same(d1, d2, cid, ip, "router kill -9 + weave launch --resume")

    d1.restart_daemon()
    assert_same(d1, d2, cid, ip, "a Docker daemon restart")

    d1.docker("rm", "-f", "web")
    wait_until(lambda: ipam_ips(d1, cid) == [], GONE_TIMEOUT, 0.1, "address not freed")
    wait_until(lambda: dns_lookup(d2, "web") == [], GONE_TIMEOUT, 0.1, "name not removed")
