"""The Docker plugin's veth pair (dataplane.plugin_veth), made in few netlink round trips.

CreateEndpoint is on `docker run --net=weave`'s path, so the pair is made enslaved and up
in one request; these tests check the result is the same as the step-by-step way made it:
the host end a hairpin port of the bridge and up, the container end down and outside it,
the MAC returned the container end's, a left-over pair re-made.
"""

from __future__ import annotations

import errno
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from weavenet.dataplane.bridge import ensure_bridge
from weavenet.dataplane.netlink import DataplaneError, iproute, link_index
from weavenet.dataplane.plugin_veth import (
    create_endpoint_veth,
    delete_endpoint_veth,
    endpoint_veths,
)
from weavenet.harness import run_cmd

BRIDGE = "dbweave"


def _link(netns: str, name: str) -> Any:
    with iproute(netns) as ipr:
        return ipr.link("get", ifname=name)[0]


def test_the_pair_is_enslaved_up_hairpin_and_reports_the_container_end_mac(
    cluster: Callable[..., Any],
) -> None:
    (host,) = cluster(1).hosts
    ensure_bridge(BRIDGE, mtu=1376, netns=host.netns)
    endpoint = secrets.token_hex(32)
    mac = create_endpoint_veth(endpoint, BRIDGE, host.netns)
    host_end, container_end = endpoint_veths(endpoint)
    bridge = _link(host.netns, BRIDGE)
    outside, inside = _link(host.netns, host_end), _link(host.netns, container_end)
    assert outside.get("IFLA_MASTER") == bridge["index"]
    assert inside.get("IFLA_MASTER") is None
    assert outside["flags"] & 1 and not inside["flags"] & 1  # IFF_UP: host end only
    assert outside.get("IFLA_MTU") == inside.get("IFLA_MTU") == 1376
    assert mac == inside.get("IFLA_ADDRESS") != outside.get("IFLA_ADDRESS")
    details = run_cmd(["ip", "-n", host.netns, "-d", "link", "show", host_end]).stdout
    assert "hairpin on" in details
    assert delete_endpoint_veth(endpoint, host.netns)
    assert not delete_endpoint_veth(endpoint, host.netns)


def test_a_left_over_pair_is_made_again(cluster: Callable[..., Any]) -> None:
    (host,) = cluster(1).hosts
    ensure_bridge(BRIDGE, netns=host.netns)
    endpoint = secrets.token_hex(32)
    _, container_end = endpoint_veths(endpoint)
    run_cmd(["ip", "-n", host.netns, "link", "add", container_end, "type", "veth", "peer",
             "name", "dbstale"])  # fmt: skip
    mac = create_endpoint_veth(endpoint, BRIDGE, host.netns)
    assert _link(host.netns, container_end).get("IFLA_ADDRESS") == mac
    with iproute(host.netns) as ipr:
        assert link_index(ipr, "dbstale") is None, "the left-over pair is gone"


def test_no_bridge_says_so(cluster: Callable[..., Any]) -> None:
    (host,) = cluster(1).hosts
    with pytest.raises(DataplaneError, match="bridge nosuch not found") as err:
        create_endpoint_veth(secrets.token_hex(32), "nosuch", host.netns)
    assert err.value.errno == errno.ENODEV
    run_cmd(["ip", "-n", host.netns, "link", "add", "dbnotbr", "type", "veth", "peer", "name",
             "dbnotbr1"])  # fmt: skip
    with pytest.raises(DataplaneError, match="not a bridge"):
        create_endpoint_veth(secrets.token_hex(32), "dbnotbr", host.netns)
