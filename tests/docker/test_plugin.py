"""The weavemesh network plugin with real dockerd on two hosts (acceptance 2 and 4)."""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Callable

from tests.docker.helpers import (
    dns_lookup,
    ipam_ips,
    run_plain_container,
    run_plugin_container,
    wait_ping,
    weave_ip,
)
from weavenet.harness import wait_until
from weavenet.harness.docker import PLUGIN_DIR, DockerCluster

DEFAULT_RANGE = ipaddress.ip_network("10.32.0.0/12")


def test_plugin_and_attach_share_one_ring_across_hosts(
    docker_cluster: Callable[..., DockerCluster],
) -> None:
    d1, d2 = docker_cluster(2).docker_hosts
    net = json.loads(d1.docker("network", "inspect", "weave").stdout)[0]
    assert net["Driver"] == "weavemesh" and net["IPAM"]["Driver"] == "weavemesh"
    a = run_plugin_container(d1, "ca")
    b = run_plugin_container(d2, "cb")
    c = run_plain_container(d1, "cc")
    attached = d1.weave("attach", "--name", "cc", c).stdout.split()
    ips = {"a": weave_ip(d1, "ca"), "b": weave_ip(d2, "cb"), "c": weave_ip(d1, "cc")}
    assert attached == [ips["c"]]
    assert len(set(ips.values())) == 3, f"duplicate addresses across the ways: {ips}"
    assert all(ipaddress.ip_address(ip) in DEFAULT_RANGE for ip in ips.values()), ips
    out = d1.docker("exec", "ca", "ip", "-o", "link", "show").stdout
    assert "ethwe0" in out and "gwbridge" not in out
    wait_ping(d1, "ca", ips["b"])
    wait_ping(d2, "cb", ips["c"])
    # the plugin's addresses are filed under the full container id, as weave attach's
    wait_until(lambda: ipam_ips(d1, a) == [ips["a"]], 10, message="a's address under its id")
    assert ipam_ips(d2, b) == [ips["b"]]
    assert ipam_ips(d1, c) == [ips["c"]]
    wait_until(lambda: dns_lookup(d2, "ca") == [ips["a"]], 10, message="a in WeaveDNS")
    wait_until(lambda: dns_lookup(d1, "cb") == [ips["b"]], 10, message="b in WeaveDNS")


def test_820_subnet_and_ip(docker_cluster: Callable[..., DockerCluster]) -> None:
    (d1,) = docker_cluster(1).docker_hosts
    d1.docker("network", "create", "--driver", "weavemesh", "--ipam-driver", "weavemesh",
              "--subnet", "10.40.0.0/16", "testsubnet")  # fmt: skip
    run_plugin_container(d1, "c1", "--ip", "10.40.0.1", net="testsubnet")
    run_plugin_container(d1, "c2", net="testsubnet")
    assert weave_ip(d1, "c1") == "10.40.0.1"
    assert weave_ip(d1, "c2") == "10.40.0.2"
    wait_ping(d1, "c1", "10.40.0.2")
    wait_ping(d1, "c2", "10.40.0.1")
    d1.docker("rm", "-f", "c1", "c2")
    d1.docker("network", "rm", "testsubnet")


def test_multicast_option_gives_the_route(docker_cluster: Callable[..., DockerCluster]) -> None:
    (d1,) = docker_cluster(1).docker_hosts
    d1.docker("network", "create", "--driver", "weavemesh", "--ipam-driver", "weavemesh",
              "--opt", "works.weave.multicast", "mcast")  # fmt: skip
    d1.docker("network", "create", "--driver", "weavemesh", "--ipam-driver", "weavemesh",
              "plain")  # fmt: skip
    run_plugin_container(d1, "mc", net="mcast")
    run_plugin_container(d1, "pl", net="plain")
    assert "224.0.0.0/4" in d1.docker("exec", "mc", "ip", "route").stdout
    assert "224.0.0.0/4" not in d1.docker("exec", "pl", "ip", "route").stdout


BAD_REQUEST = """
import json, socket, sys
def post(path, body):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(("POST %s HTTP/1.1\\r\\nHost: plugin\\r\\nContent-Length: %d\\r\\n"
               "Connection: close\\r\\n\\r\\n" % (path, len(body))).encode() + body)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    head, _, payload = data.partition(b"\\r\\n\\r\\n")
    return head.split()[1].decode(), json.loads(payload)
print(json.dumps([post("/IpamDriver.RequestAddress", b"{not json"),
                  post("/NetworkDriver.Join", b"[1, 2]"),
                  post("/Plugin.Activate", b"")]))
"""


def test_invalid_json_gets_a_json_error_and_the_plugin_keeps_serving(
    docker_cluster: Callable[..., DockerCluster],
) -> None:
    (d1,) = docker_cluster(1).docker_hosts
    socket_path = f"{PLUGIN_DIR}/weavemesh.sock"
    out = d1.run_in_host([sys.executable, "-c", BAD_REQUEST, socket_path]).stdout
    (s1, bad_json), (s2, bad_shape), (s3, activate) = json.loads(out)
    assert s1 == "400" and bad_json["Err"].startswith("Unable to decode JSON payload")
    assert s2 == "400" and "JSON object" in bad_shape["Err"]
    assert s3 == "200" and activate == {"Implements": ["NetworkDriver", "IpamDriver"]}
    run_plugin_container(d1, "after")  # Docker still gets its answers
    assert ipaddress.ip_address(weave_ip(d1, "after")) in DEFAULT_RANGE
