"""Helpers for the Docker tier: container addresses, pings, IPAM and DNS lookups."""

from __future__ import annotations

import ipaddress
import sys

from weavenet.harness import wait_until
from weavenet.harness.docker import BUSYBOX_IMAGE, DockerHost


def weave_ips(dh: DockerHost, name: str) -> list[str]:
    """IPv4 addresses on the container's ethwe* interfaces (from inside it)."""
    out = dh.docker("exec", name, "ip", "-o", "-4", "addr", "show").stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1].startswith("ethwe"):
            found.append(fields[3].split("/")[0])
    return found


def weave_ip(dh: DockerHost, name: str, timeout: float = 15.0) -> str:
    ips = wait_until(lambda: weave_ips(dh, name), timeout, 0.2, f"{name} has no weave address")
    assert len(ips) == 1, ips
    return ips[0]


def run_plugin_container(dh: DockerHost, name: str, *extra: str, net: str = "weave") -> str:
    """`docker run -d --net=NET` a sleeping busybox; returns the full container id."""
    argv = ["run", "-d", "--name", name, f"--net={net}", *extra, BUSYBOX_IMAGE, "sleep", "3600"]
    return dh.docker(*argv).stdout.strip()


def run_plain_container(dh: DockerHost, name: str, *extra: str) -> str:
    """A container with no network of its own (the daemon has no bridge)."""
    argv = ["run", "-d", "--name", name, *extra, BUSYBOX_IMAGE, "sleep", "3600"]
    return dh.docker(*argv).stdout.strip()


def pings(dh: DockerHost, name: str, ip: str) -> bool:
    proc = dh.docker("exec", name, "ping", "-c", "1", "-W", "1", ip, check=False, timeout=20)
    return proc.returncode == 0


def wait_ping(dh: DockerHost, name: str, ip: str, timeout: float = 15.0) -> None:
    wait_until(lambda: pings(dh, name, ip), timeout, 0.2, f"{name} cannot ping {ip}")


def ipam_ips(dh: DockerHost, ident: str) -> list[str]:
    """`GET /ip/<ident>` through the router's API: the addresses IPAM files under it."""
    script = (
        "import urllib.request, urllib.error, sys\n"
        "try:\n"
        f"    print(urllib.request.urlopen('http://127.0.0.1:6784/ip/{ident}').read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
    )
    text = dh.run_in_host([sys.executable, "-c", script]).stdout.strip()
    try:
        ipaddress.ip_interface(text.split()[0] if text else "")
    except ValueError:
        return []
    return [t.split("/")[0] for t in text.split()]


def dns_lookup(dh: DockerHost, name: str) -> list[str]:
    return dh.weave("dns-lookup", name, check=False).stdout.split()
