"""Set-up of each data path of bench/dataplane.py, every one in its own 2-host Cluster.

A set-up is a generator in two steps: up to its `yield` it starts the path's routers, after
it it waits for them and wires the containers, so that all paths' routers start up and
connect at the same time. It returns an Endpoint (where iperf3 and ping run from, the
address they go to, the routers whose CPU is counted, how to read the overlay in use) or
raises PathUnavailable with the reason the path cannot be measured here (a flag refused,
another overlay shown).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

from dataplane_report import PATHS, overlays
from netbench import start_iperf_server

from weavenet.harness import (
    Cluster,
    Container,
    GoWeaver,
    Host,
    InteropCluster,
    attach_go_container,
    venv_bin,
    wait_until,
)
from weavenet.harness.containers import attached_container, wait_reaches
from weavenet.harness.mesh import wait_for_mesh

OVERLAY_CIDRS = ("10.2.1.1/24", "10.2.1.2/24")
KV_IPS = ("10.9.0.1", "10.9.0.2")
OVERLAY_WAIT_S = 60.0
FAST_SLEEVE_USERS = ("fast sleeve", "encrypted fast sleeve")
LATE_ROUTER_S = 90.0


class PathUnavailable(RuntimeError):
    """This path cannot be measured on this checkout or machine (the reason says why)."""


@dataclass
class Endpoint:
    name: str
    src: Host | Container
    dst_ip: str
    router_pids: Callable[[], list[int | None]] = lambda: []
    status_hosts: list[Host] = field(default_factory=list)  # `weave status connections` there

    def connections(self) -> list[str]:
        """`weave status connections` of each router (ours or Go's: same HTTP address)."""
        return [h.weave("status", "connections").stdout for h in self.status_hosts]

    def overlays(self) -> list[list[str]]:
        """The overlays each router's established connections use now."""
        return [overlays(text) for text in self.connections()]


Setup = Generator[None, None, Endpoint]  # start the routers; yield; wait, wire, return


# ---- no router ------------------------------------------------------------------------
def underlay(cluster: Cluster) -> Setup:
    h1, h2 = cluster.hosts
    yield
    start_iperf_server(cluster, h2)
    return Endpoint("underlay", h1, h2.ip)


def hand_made_vxlan(cluster: Cluster) -> Setup:
    """Container kv on each host behind a bridge with a static-fdb kernel VXLAN port (UDP
    4789, nolearning, MTU 1376 as fastdp): the limit of the fastdp design."""
    yield
    ends = []
    for i, host in enumerate(cluster.hosts):
        peer = cluster.hosts[1 - i]
        kv = host.add_container("kv")
        script = [
            "ip link add kvbr type bridge",
            "ip link set kvbr up",
            f"ip link add kvx type vxlan id 42 dstport 4789 local {host.ip} nolearning",
            "ip link set kvx mtu 1376 master kvbr up",
            f"bridge fdb append 00:00:00:00:00:00 dev kvx dst {peer.ip}",
            "ip link add kvh mtu 1376 type veth peer name kvc mtu 1376",
            "ip link set kvh master kvbr up",
            f"ip link set kvc netns {kv.netns}",
        ]
        for line in script:
            host.run(line.split())
        kv.run(["ip", "addr", "add", f"{KV_IPS[i]}/24", "dev", "kvc"])
        kv.run(["ip", "link", "set", "kvc", "up"])
        ends.append(kv)
    wait_reaches(ends[0], KV_IPS[1], timeout=20)
    start_iperf_server(cluster, ends[1])
    return Endpoint("vxlan", ends[0], KV_IPS[1])


# ---- our routers ----------------------------------------------------------------------
def our_weaver_flags() -> str:
    """`weaver --help` of this checkout (which flags it knows)."""
    proc = subprocess.run(
        [str(venv_bin() / "weaver"), "--help"], capture_output=True, text=True, timeout=60
    )
    return proc.stdout


FAST_SLEEVE_FLAG = "--no-fast-sleeve"


def ours(cluster: Cluster, name: str, flags: list[str], known_flags: str) -> Setup:
    """Both routers `weave launch FLAGS`, h2 pointed at h1; a container on each."""
    if FAST_SLEEVE_FLAG not in known_flags and PATHS[name][1] in FAST_SLEEVE_USERS:
        raise PathUnavailable(f"this weaver has no fast sleeve (no {FAST_SLEEVE_FLAG} flag)")
    for flag in flags:
        if flag.startswith("--no-") and flag not in known_flags:
            raise PathUnavailable(f"this weaver has no {flag} (weaver --help)")
    h1, h2 = cluster.hosts
    for host, peers in ((h1, []), (h2, [h1.ip])):
        launch(host, flags, peers)
    yield
    wait_for_mesh([h1, h2], peers=2, established=1, timeout=60)
    end = Endpoint(name, h1, OVERLAY_CIDRS[1].split("/")[0], status_hosts=[h1, h2])
    end.router_pids = lambda: [h1.router_pid(), h2.router_pid()]
    wait_for_overlay(end, PATHS[name][1] or "")
    a = attached_container(h1, "a", OVERLAY_CIDRS[0])
    b = attached_container(h2, "b", OVERLAY_CIDRS[1])
    wait_reaches(a, end.dst_ip, timeout=30)
    start_iperf_server(cluster, b)
    end.src = a
    return end


def launch(host: Host, flags: list[str], peers: list[str]) -> None:
    """`weave launch`; a router that started but answers late (a loaded machine: launch
    gives up after 30 s) gets more time, one that did not start makes the path unavailable."""
    proc = host.launch(*flags, *peers, check=False)
    if proc.returncode == 0:
        return
    if host.router_pid() is None:
        last = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:])
        raise PathUnavailable(f"weave launch {' '.join(flags)} refused: {last}")
    wait_until(
        lambda: host.weave("status", check=False, timeout=10).returncode == 0,
        timeout=LATE_ROUTER_S,
        interval=1.0,
        message=f"router on {host.netns} answers",
    )


def wait_for_overlay(end: Endpoint, want: str) -> None:
    """Until both routers show `want` (and the sleeve its discovered MTU); else unavailable."""
    seen: list[list[str]] = []

    def there() -> bool:
        texts = end.connections()
        seen[:] = [overlays(text) for text in texts]
        pmtu_known = all("mtu=" in text for text in texts)
        settled = pmtu_known or want not in ("sleeve", "encrypted sleeve")
        return settled and all(found == [want] for found in seen)

    try:
        wait_until(there, timeout=OVERLAY_WAIT_S, interval=0.5, message=f"{want} on both")
    except TimeoutError:
        shown = " / ".join(", ".join(found) or "none established" for found in seen)
        raise PathUnavailable(
            f"connections show {shown} after {OVERLAY_WAIT_S:g} s, not {want}"
        ) from None


# ---- the Go weaver --------------------------------------------------------------------
def go_sleeve(cluster: Cluster, name: str, binary: Path, password: str | None) -> Setup:
    """Two Go weavers 2.8.1 (sleeve only: no openvswitch here); a container on each."""
    if not isinstance(cluster, InteropCluster):
        raise TypeError("the Go weaver paths need an InteropCluster (it stops them)")
    h1, h2 = cluster.hosts
    weavers: list[GoWeaver] = []
    for host, peers in ((h1, []), (h2, [h1.ip])):
        go = cluster.go_weaver(host, binary, f"a2:00:00:00:00:{host.index:02x}",
                               password=password, peers=peers)  # fmt: skip
        go.start()
        weavers.append(go)
    yield
    end = Endpoint(name, h1, OVERLAY_CIDRS[1].split("/")[0], status_hosts=[h1, h2])
    end.router_pids = lambda: [go.pid() for go in weavers]
    wait_for_overlay(end, PATHS[name][1] or "")
    a = attach_go_container(h1, "a", OVERLAY_CIDRS[0])
    b = attach_go_container(h2, "b", OVERLAY_CIDRS[1])
    wait_reaches(a, end.dst_ip, timeout=30)
    start_iperf_server(cluster, b)
    end.src = a
    return end
