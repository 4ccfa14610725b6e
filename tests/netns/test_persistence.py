"""Attachments are desired state: they survive router restarts (kill -9, stop + launch
--resume), lost interfaces come back, containers gone for good are dropped and their
addresses freed, `weave ps` works while the router is down, `weave reset` wipes the host,
and `weave launch` refuses bad input before it starts anything."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

from weavenet.harness import Cluster, Container, Host, wait_for_mesh, wait_until
from weavenet.harness.containers import reaches
from weavenet.harness.util import pid_alive
from weavenet.io.store import read_attachments


def spec(c: Container) -> str:
    return f"netns:{c.netns}"


def attach(host: Host, c: Container, *addrs: str) -> str:
    """`weave attach` without addresses unless given; the first IP it printed."""
    return host.weave("attach", *addrs, spec(c), timeout=60).stdout.split()[0]


def ethwe(c: Container) -> tuple[str, list[str]] | None:
    """(MAC, addresses) of the container's ethwe, None if it has none."""
    proc = c.run(["ip", "-j", "addr", "show", "dev", "ethwe"], check=False)
    if proc.returncode != 0:
        return None
    (link,) = json.loads(proc.stdout)
    addrs = [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"]
    return str(link["address"]), addrs


def ipam_owned(host: Host, ident: str) -> str:
    """GET /ip/<ident>: what IPAM says the ident owns (space-separated CIDRs)."""
    url = f"http://127.0.0.1:6784/ip/{ident}"
    return host.run(["curl", "-sS", "--max-time", "10", url]).stdout.strip()


def persisted(host: Host) -> set[str]:
    found = read_attachments(host.state_dir)
    return set() if found is None else {a.ident for a in found[0]}


def kill9(host: Host) -> None:
    pid = host.router_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), timeout=10, message="router dead")


def two_hosts(cluster: Callable[..., Cluster]) -> tuple[Host, Host, Container, Container]:
    h1, h2 = cluster(2).hosts
    h1.launch()
    h2.launch(h1.ip)
    wait_for_mesh([h1, h2])
    return h1, h2, h1.add_container("c1"), h2.add_container("c2")


def _same_after(
    h1: Host, h2: Host, c1: Container, c2: Container, restart: Callable[[], Any]
) -> None:
    ip1, ip2 = ipam_owned(h1, spec(c1)), ipam_owned(h2, spec(c2))
    name, link = h1.report()["Router"]["Name"], ethwe(c1)
    restart()
    h1.launch("--resume")
    wait_for_mesh([h1, h2])
    assert h1.report()["Router"]["Name"] == name, "same peer name"
    assert ipam_owned(h1, spec(c1)) == ip1, "IPAM answers as before"
    assert ethwe(c1) == link, "same MAC and addresses"
    assert persisted(h1) == {spec(c1)}
    assert reaches(c1, ip2.split("/")[0]) and reaches(c2, ip1.split("/")[0])


def test_kill9_and_stop_then_resume_keep_attachments(cluster: Callable[..., Cluster]) -> None:
    h1, h2, c1, c2 = two_hosts(cluster)
    ip1, ip2 = attach(h1, c1), attach(h2, c2)
    assert ip1 != ip2 and reaches(c1, ip2) and reaches(c2, ip1)

    def crash() -> None:
        kill9(h1)
        lines = h1.weave("ps").stdout.splitlines()  # the router is down: ps reads the store
        assert lines[1:] == [f"{spec(c1)} {ethwe(c1)[0]} {ethwe(c1)[1][0]}"]  # type: ignore[index]

    _same_after(h1, h2, c1, c2, crash)
    _same_after(h1, h2, c1, c2, h1.stop)


def test_lost_ethwe_comes_back_with_the_same_address_and_mac(
    cluster: Callable[..., Cluster],
) -> None:
    h1 = cluster(1).hosts[0]
    h1.launch()
    c1, c2 = h1.add_container("c1"), h1.add_container("c2")
    ip1 = attach(h1, c1)
    attach(h1, c2)
    before = ethwe(c1)
    c1.run(["ip", "link", "del", "ethwe"])
    assert ethwe(c1) is None
    wait_until(lambda: ethwe(c1) == before, timeout=15, message="ethwe re-created")
    assert reaches(c2, ip1)


def test_a_container_gone_for_good_is_dropped_and_its_address_freed(
    cluster: Callable[..., Cluster],
) -> None:
    h1 = cluster(1).hosts[0]
    h1.launch()
    c1, c2 = h1.add_container("c1"), h1.add_container("c2")
    ip1 = attach(h1, c1)
    attach(h1, c2)
    ident = spec(c1)
    h1.remove_container("c1")
    wait_until(lambda: ident not in persisted(h1), timeout=15, message="attachment dropped")
    wait_until(lambda: ipam_owned(h1, ident) == "", timeout=10, message="address freed")
    assert "dropping its attachment" in h1.log()
    assert attach(h1, h1.add_container("c3")) == ip1, "the freed address is handed out again"


def test_attach_waits_visibly_and_times_out_without_quorum(
    cluster: Callable[..., Cluster],
) -> None:
    h1, h2 = cluster(2).hosts
    h1.launch(h2.ip)  # a quorum of 2 is needed, and h2 never comes
    c1 = h1.add_container("c1")
    result = h1.weave("attach", "--timeout", "5", spec(c1), check=False, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Waiting for IP address allocation: awaiting consensus")
    assert lines[-1].startswith("weave attach: timed out after 5s waiting for an IP address: ")
    assert "awaiting consensus" in lines[-1]
    assert ethwe(c1) is None and persisted(h1) == set()


def test_reset_removes_everything(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    h1.launch()
    c1 = h1.add_container("c1")
    attach(h1, c1)
    exposed = h1.weave("expose").stdout.strip()
    h1.stop()
    h1.launch("--resume")  # the exposed range routes via the weave bridge: not an overlap
    assert reaches(h1, attach(h1, c1))
    veths = [v for v in h1.run(["ip", "-o", "link"]).stdout.split() if v.startswith("vethwepl")]
    assert veths and exposed

    h1.weave("reset")
    links = h1.run(["ip", "-o", "link"]).stdout
    assert "weave" not in links and "vethwepl" not in links, links
    assert h1.run(["nft", "list", "table", "ip", "weavenet"], check=False).returncode != 0
    assert not h1.state_dir.exists()
    assert h1.router_pid() is None


def test_launch_refuses_bad_input_at_once(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    helped = h1.weave("launch", "--help")
    assert "--ipalloc-range" in helped.stdout and "--conn-limit" in helped.stdout
    bad = h1.launch("999.1.1.1", check=False)
    assert bad.returncode == 1
    assert bad.stderr == "weave launch: invalid host in peer address '999.1.1.1'\n"
    h1.run(["ip", "route", "add", "10.40.0.0/16", "dev", "eth0"])
    overlap = h1.launch(check=False)
    assert overlap.returncode == 1
    assert overlap.stderr.splitlines() == [
        "ERROR: Default --ipalloc-range 10.32.0.0/12 overlaps with existing route on host.",
        "You must pick another range and set it on all hosts.",
    ]
    assert h1.router_pid() is None and not (h1.state_dir / "weaver.pid").exists()
