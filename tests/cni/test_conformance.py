"""A conformance-style suite of our own, from the CNI 1.0.0 spec, run against a real
router in a namespace host (issue 11, acceptance 1): result schema (1.0.0 and older
versions), DEL twice, DEL of an unknown container, CHECK of a good and of damaged
attachments, bad config and missing environment each giving an error object with a code,
the router down, and a bounded wait while IPAM awaits consensus."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator

import pytest

from tests.cni.cni_helpers import (
    MAC,
    REFERENCE_PLUGINS,
    Invocation,
    addresses,
    netconf,
    owned,
    registered,
    routes,
)
from weavenet.harness import Cluster, Container, Host, random_prefix

UNIVERSE = ipaddress.IPv4Network("10.32.0.0/12")


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[Host, Host]]:
    """h1 runs a router; h2 has none (the router-down cases)."""
    cluster = Cluster(2, prefix="cn" + random_prefix())
    cluster.start()
    try:
        cluster.hosts[0].launch("--no-discovery")
        yield cluster.hosts[0], cluster.hosts[1]
    finally:
        cluster.close()


@pytest.fixture
def h1(hosts: tuple[Host, Host]) -> Host:
    return hosts[0]


_made = iter(range(10_000))


@pytest.fixture
def box(h1: Host) -> Iterator[Container]:
    container = h1.add_container(f"c{next(_made)}")
    yield container
    h1.remove_container(container.name)


# --- ADD: the result ---------------------------------------------------------------------


def test_add_result_is_spec_valid_and_matches_the_kernel(h1: Host, box: Container) -> None:
    cni = Invocation.of(box)
    result = cni.add(netconf())
    assert result["cniVersion"] == "1.0.0"
    host_end, cont = result["interfaces"]
    assert MAC.fullmatch(host_end["mac"]) and MAC.fullmatch(cont["mac"])
    assert host_end["name"].startswith("vethwepl") and "sandbox" not in host_end
    assert cont == {"name": "eth0", "mac": cont["mac"], "sandbox": cni.netns}
    (ip,) = result["ips"]
    assert set(ip) == {"address", "gateway", "interface"} and ip["interface"] == 1
    address = ipaddress.IPv4Interface(ip["address"])
    assert address.network == UNIVERSE
    assert addresses(box) == [ip["address"]]
    assert owned(h1, cni.container_id) == [ip["address"]]
    assert cni.container_id in registered(h1)
    # the gateway is the bridge's exposed address, and the default route goes through it
    assert ip["gateway"] in [a.split("/")[0] for a in addresses(h1, "weave")]  # type: ignore[arg-type]
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": ip["gateway"]}]
    assert {"dst": "default", "gateway": ip["gateway"], "dev": "eth0", "flags": []} in [
        {k: r.get(k, []) for k in ("dst", "gateway", "dev", "flags")} for r in routes(box)
    ]
    mac = json.loads(box.run(["ip", "-j", "link", "show", "eth0"]).stdout)[0]["address"]
    assert mac == cont["mac"]
    assert "hairpin on" in h1.run(["bridge", "-d", "link", "show", "dev", host_end["name"]]).stdout
    assert result["dns"] == {}


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0"])
def test_add_answers_in_the_schema_of_0_3_and_0_4(box: Container, version: str) -> None:
    result = Invocation.of(box).add(netconf(version))
    assert result["cniVersion"] == version
    assert result["ips"][0]["version"] == "4" and result["ips"][0]["interface"] == 1
    assert all("mac" in i for i in result["interfaces"])


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0"])
def test_add_answers_in_the_legacy_schema(box: Container, version: str) -> None:
    result = Invocation.of(box).add(netconf(version, dns={"nameservers": ["10.32.0.53"]}))
    assert set(result) == {"cniVersion", "ip4", "dns"}
    assert result["ip4"]["ip"] == addresses(box)[0]
    assert result["dns"] == {"nameservers": ["10.32.0.53"]}


def test_add_follows_mtu_hairpin_and_ipam_addresses(h1: Host, box: Container) -> None:
    cni = Invocation.of(box, ifname="net1")
    conf = netconf(mtu=1300, hairpinMode=False, ipam={"addresses": [{"address": "10.32.9.9/12"}]})
    result = cni.add(conf)
    assert result["ips"][0]["address"] == "10.32.9.9/12" == addresses(box, "net1")[0]
    assert owned(h1, cni.container_id) == ["10.32.9.9/12"]
    link = json.loads(box.run(["ip", "-j", "link", "show", "net1"]).stdout)[0]
    assert link["mtu"] == 1300
    port = result["interfaces"][0]["name"]
    assert "hairpin off" in h1.run(["bridge", "-d", "link", "show", "dev", port]).stdout


def test_add_with_ipam_routes_installs_exactly_those(box: Container) -> None:
    conf = netconf(ipam={"routes": [{"dst": "10.32.0.0/12"}], "gateway": "10.32.0.77"})
    result = Invocation.of(box).add(conf)
    assert result["routes"] == [{"dst": "10.32.0.0/12", "gw": "10.32.0.77"}]
    assert not [r for r in routes(box) if r["dst"] == "default"]


def test_add_into_the_host_namespace_is_refused(h1: Host) -> None:
    answer = Invocation(h1, f"/run/netns/{h1.netns}")("ADD", netconf())
    assert answer.rc != 0 and answer.code == 102 and "host network namespace" in answer.msg


# --- DEL ---------------------------------------------------------------------------------


def test_del_twice_frees_and_succeeds(h1: Host, box: Container) -> None:
    cni = Invocation.of(box)
    cni.add(netconf())
    for _ in range(2):
        answer = cni("DEL", netconf())
        assert (answer.rc, answer.stdout) == (0, ""), answer
    assert addresses(box) == [] and owned(h1, cni.container_id) == []
    assert cni.container_id not in registered(h1)


def test_del_of_an_unknown_container_succeeds(box: Container) -> None:
    answer = Invocation.of(box)("DEL", netconf())
    assert (answer.rc, answer.stdout) == (0, "")


def test_del_without_a_namespace_still_frees(h1: Host, box: Container) -> None:
    cni = Invocation.of(box)
    cni.add(netconf())
    answer = Invocation(h1, "", cni.container_id)("DEL", netconf(), drop=("CNI_NETNS",))
    assert answer.rc == 0, answer
    assert owned(h1, cni.container_id) == []


def test_del_after_the_namespace_is_gone(h1: Host) -> None:
    box = h1.add_container("gone")
    cni = Invocation.of(box)
    cni.add(netconf())
    h1.remove_container("gone")
    assert cni("DEL", netconf()).rc == 0
    assert owned(h1, cni.container_id) == []


# --- CHECK -------------------------------------------------------------------------------


def _added(box: Container) -> tuple[Invocation, dict[str, object]]:
    cni = Invocation.of(box)
    conf = netconf()
    conf["prevResult"] = cni.add(conf)
    return cni, conf


def test_check_of_a_good_attachment_passes(box: Container) -> None:
    cni, conf = _added(box)
    answer = cni("CHECK", conf)
    assert (answer.rc, answer.stdout) == (0, ""), answer


def test_check_reports_a_missing_address_and_route(box: Container) -> None:
    cni, conf = _added(box)
    box.run(["ip", "addr", "flush", "dev", "eth0"])
    answer = cni("CHECK", conf)
    assert answer.rc == 1 and answer.code == 103
    assert "lacks address" in answer.msg and "route 0.0.0.0/0" in answer.msg


def test_check_reports_a_missing_interface(box: Container) -> None:
    cni, conf = _added(box)
    box.run(["ip", "link", "del", "eth0"])
    answer = cni("CHECK", conf)
    assert answer.code == 103 and "interface eth0 is missing" in answer.msg


def test_check_reports_an_address_freed_in_ipam(h1: Host, box: Container) -> None:
    cni, conf = _added(box)
    h1.run(["curl", "-sf", "-X", "DELETE", f"http://127.0.0.1:6784/ip/{cni.container_id}"])
    answer = cni("CHECK", conf)
    assert answer.code == 103 and "no longer allocated" in answer.msg


def test_check_without_prev_result_or_on_an_old_version_is_an_error(box: Container) -> None:
    cni = Invocation.of(box)
    assert cni("CHECK", netconf()).code == 103
    assert cni("CHECK", netconf("0.3.1")).code == 1


# --- errors: config, environment, router -----------------------------------------------


@pytest.mark.parametrize(
    ("stdin", "code"),
    [
        ("{not json", 6),
        ("[1, 2]", 6),
        (json.dumps({"name": "weave", "type": "weave-net"}), 7),
        (json.dumps(netconf("9.9.9")), 1),
        (json.dumps(netconf(isGateway=True)), 2),
        (json.dumps(netconf(mtu="big")), 7),
        (json.dumps(netconf(ipam={"subnet": "10.32.0.0/33"})), 7),
    ],
)
def test_bad_config_is_an_error_with_a_code(box: Container, stdin: str, code: int) -> None:
    for command in ("ADD", "DEL"):
        answer = Invocation.of(box)(command, stdin)
        assert answer.rc == 1 and answer.code == code, answer
        assert set(answer.out or {}) >= {"cniVersion", "code", "msg"} and answer.msg


@pytest.mark.parametrize("var", ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"])
def test_missing_environment_is_an_error_with_a_code(box: Container, var: str) -> None:
    answer = Invocation.of(box)("ADD", netconf(), drop=(var,))
    assert answer.rc == 1 and answer.code == 4 and var in answer.msg, answer


def test_version_lists_the_supported_versions(box: Container) -> None:
    answer = Invocation.of(box)("VERSION", "")
    assert answer.rc == 0 and answer.out is not None
    assert {"0.3.1", "0.4.0", "1.0.0"} <= set(answer.out["supportedVersions"])


def test_router_down_says_to_launch_it(hosts: tuple[Host, Host]) -> None:
    h2 = hosts[1]
    box = h2.add_container("nort")
    for command in ("ADD", "DEL"):
        answer = Invocation.of(box)(command, netconf())
        assert answer.code == 11 and "weave launch" in answer.msg, answer
    assert addresses(box) == []  # nothing half-made


def test_awaiting_consensus_is_a_bounded_wait_naming_the_missing_peer() -> None:
    with Cluster(1, prefix="cn" + random_prefix()) as cluster:
        host = cluster.hosts[0]
        host.launch("--no-discovery", "--ipalloc-init", "consensus=2", "172.31.255.254")
        box = host.add_container("wait")
        start = time.monotonic()
        answer = Invocation.of(box)("ADD", netconf(ipamTimeout=2))
        assert time.monotonic() - start < 30
        assert answer.code == 11, answer
        assert "awaiting consensus" in answer.msg and "172.31.255.254" in answer.msg
        assert addresses(box) == []


# --- other IPAM plugins, and weave-ipam for other plugins ------------------------------


def test_weave_ipam_serves_the_reference_bridge_plugin(h1: Host, box: Container) -> None:
    cni = Invocation.of(box, plugin="weave-ipam")
    conf = {"cniVersion": "1.0.0", "name": "cnbr", "type": "bridge", "bridge": "cnbr0",
            "ipam": {"type": "weave-ipam"}}  # fmt: skip
    bridge = Invocation(h1, cni.netns, cni.container_id)
    bridge.plugin = f"{REFERENCE_PLUGINS}/bridge"
    result = bridge.add(conf)
    (ip,) = result["ips"]
    assert ipaddress.IPv4Interface(ip["address"]).network == UNIVERSE
    assert addresses(box) == [ip["address"]] == owned(h1, cni.container_id)
    assert bridge("DEL", conf).rc == 0
    assert owned(h1, cni.container_id) == []
    h1.run(["ip", "link", "del", "cnbr0"], check=False)


def test_weave_net_runs_another_ipam_plugin(h1: Host, box: Container, tmp_path: object) -> None:
    ipam = {"type": "host-local", "subnet": "10.99.0.0/24", "dataDir": str(tmp_path)}
    cni = Invocation.of(box)
    result = cni.add(netconf(ipam=ipam))
    assert result["ips"][0]["address"].startswith("10.99.0.")
    assert addresses(box) == [result["ips"][0]["address"]]
    assert owned(h1, cni.container_id) == []  # weave IPAM not involved
    assert cni("DEL", netconf(ipam=ipam)).rc == 0
