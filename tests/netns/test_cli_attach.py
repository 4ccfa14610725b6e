"""`weave attach|detach|ps|expose|hide` end to end: the real CLI in a harness host netns,
next to a router started with `weave launch` (which creates the `weave` bridge)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from weavenet.harness import Cluster, Container, Host, wait_until
from weavenet.harness.containers import reaches
from weavenet.io.store import read_attachments

NOT_RUNNING = (
    "weave: attach: weave router is not running at 127.0.0.1:6784: start it with 'weave launch'"
)


def spec(c: Container) -> str:
    return f"netns:{c.netns}"


def mac_of(ns: Container | Host, ifname: str) -> str:
    links: list[dict[str, Any]] = json.loads(ns.run(["ip", "-j", "link", "show", ifname]).stdout)
    return str(links[0]["address"])


def addresses(ns: Container | Host, ifname: str) -> list[str]:
    out = ns.run(["ip", "-j", "-4", "addr", "show", "dev", ifname]).stdout
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out) for a in link["addr_info"]]


def has_link(ns: Container | Host, ifname: str) -> bool:
    return ns.run(["ip", "link", "show", "dev", ifname], check=False).returncode == 0


def ps_lines(host: Host, *containers: str) -> list[str]:
    return host.weave("ps", *containers).stdout.splitlines()


def ps_line(c: Container, *cidrs: str) -> str:
    return " ".join([spec(c), mac_of(c, "ethwe"), *cidrs])


def persisted(host: Host) -> set[str]:
    """The idents the router has committed to its store."""
    found = read_attachments(host.state_dir)
    return set() if found is None else {a.ident for a in found[0]}


def persisted_exposed(host: Host) -> list[tuple[str, bool]]:
    found = read_attachments(host.state_dir)
    return [] if found is None else [(str(c), m) for c, m in found[1]]


def launched(cluster: Callable[..., Cluster]) -> Host:
    host = cluster(1).hosts[0]
    host.launch("--no-discovery")
    assert has_link(host, "weave"), "weave launch must create the bridge"
    return host


def test_attach_ps_detach(cluster: Callable[..., Cluster]) -> None:
    h1 = launched(cluster)
    c1, c2 = h1.add_container("c1"), h1.add_container("c2")
    assert h1.weave("attach", "10.2.1.1/24", spec(c1)).stdout == "10.2.1.1\n"
    assert h1.weave("attach", "ip:10.2.1.2/24", spec(c2)).stdout == "10.2.1.2\n"
    assert reaches(c1, "10.2.1.2") and reaches(c2, "10.2.1.1")
    assert "224.0.0.0/4 dev ethwe scope link" in c1.run(["ip", "route"]).stdout

    expose_line = f"weave:expose {mac_of(h1, 'weave')}"
    line1, line2 = ps_line(c1, "10.2.1.1/24"), ps_line(c2, "10.2.1.2/24")
    assert ps_lines(h1) == [expose_line, line1, line2]
    assert ps_lines(h1, spec(c2)) == [line2]
    assert persisted(h1) == {spec(c1), spec(c2)}

    # re-running attach changes nothing: same MAC, same addresses, still connected
    assert h1.weave("attach", "10.2.1.1/24", spec(c1)).stdout == "10.2.1.1\n"
    assert ps_lines(h1) == [expose_line, line1, line2]
    assert addresses(c1, "ethwe") == ["10.2.1.1/24"]
    assert reaches(c2, "10.2.1.1")

    assert h1.weave("detach", spec(c2)).stdout == "10.2.1.2\n"
    assert not has_link(c2, "ethwe")
    assert ps_lines(h1) == [expose_line, line1]
    assert persisted(h1) == {spec(c1)}
    assert not c1.ping("10.2.1.2", timeout=1.0)
    assert h1.weave("detach", spec(c2)).stdout == "", "detaching again removes nothing"


def test_detach_some_addresses_and_forget_dead_containers(
    cluster: Callable[..., Cluster],
) -> None:
    h1 = launched(cluster)
    c1, c2 = h1.add_container("c1"), h1.add_container("c2")
    out = h1.weave("attach", "--no-multicast-route", "10.2.1.1/24", "10.2.2.1/24", spec(c1))
    assert out.stdout == "10.2.1.1 10.2.2.1\n"
    assert "224.0.0.0" not in c1.run(["ip", "route"]).stdout
    h1.weave("attach", "10.2.2.2/24", spec(c2))
    assert reaches(c2, "10.2.2.1")

    assert h1.weave("detach", "10.2.2.1/24", spec(c1)).stdout == "10.2.2.1\n"
    assert addresses(c1, "ethwe") == ["10.2.1.1/24"]
    assert ps_lines(h1, spec(c1)) == [ps_line(c1, "10.2.1.1/24")]
    assert not c2.ping("10.2.2.1", timeout=1.0)

    h1.remove_container("c1")  # the namespace (and its ethwe) is gone: the router drops it
    wait_until(lambda: persisted(h1) == {spec(c2)}, timeout=15, message="c1 dropped")
    assert ps_lines(h1)[1:] == [ps_line(c2, "10.2.2.2/24")]


def test_expose_and_hide(cluster: Callable[..., Cluster]) -> None:
    h1 = launched(cluster)
    c1 = h1.add_container("c1")
    h1.weave("attach", "10.2.1.1/24", spec(c1))
    assert not h1.ping("10.2.1.1", timeout=1.0), "the host is not on the weave network yet"

    assert h1.weave("expose", "10.2.1.254/24").stdout == "10.2.1.254\n"
    assert reaches(h1, "10.2.1.1")
    bridge_mac = mac_of(h1, "weave")
    assert ps_lines(h1)[0] == f"weave:expose {bridge_mac} 10.2.1.254/24"
    assert persisted_exposed(h1) == [("10.2.1.254/24", True)]
    assert "masquerade" in h1.run(["nft", "list", "table", "ip", "weavenet"]).stdout
    assert h1.weave("expose", "10.2.1.254/24").stdout == "10.2.1.254\n", "idempotent"
    assert addresses(h1, "weave") == ["10.2.1.254/24"]

    assert h1.weave("hide", "10.2.1.254/24").stdout == "10.2.1.254\n"
    assert addresses(h1, "weave") == []
    assert not h1.ping("10.2.1.1", timeout=1.0)
    assert ps_lines(h1)[0] == f"weave:expose {bridge_mac}"
    assert persisted_exposed(h1) == []


def test_attach_before_launch_fails_cleanly(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    c1 = h1.add_container("c1")
    result = h1.weave("attach", "10.2.1.1/24", spec(c1), check=False)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.splitlines() == [NOT_RUNNING]
    assert not has_link(c1, "ethwe")
    assert read_attachments(h1.state_dir) is None
    refused = h1.weave("attach", "10.2.1.1/24", f"netns:{h1.netns}", check=False)
    assert refused.returncode != 0
    assert refused.stderr.startswith("weave: attach: Container is running in the host network")
    assert len(refused.stderr.splitlines()) == 1
