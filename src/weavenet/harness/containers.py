"""Container helpers for namespace tests: attach like `weave attach`, wait for a ping."""

from __future__ import annotations

import ipaddress

from weavenet.dataplane import resolve_container
from weavenet.dataplane.attach import attach
from weavenet.harness.netns import Container, Host
from weavenet.harness.util import wait_until


def attached_container(host: Host, name: str, *cidrs: str) -> Container:
    """A new container netns on `host` with `ethwe` on the weave bridge at `cidrs`."""
    container = host.add_container(name)
    ref = resolve_container(f"netns:{container.netns}", netns=host.netns)
    attach(ref, [ipaddress.IPv4Interface(c) for c in cidrs], netns=host.netns)
    return container


def add_address(host: Host, container: Container, cidr: str) -> None:
    ref = resolve_container(f"netns:{container.netns}", netns=host.netns)
    attach(ref, [ipaddress.IPv4Interface(cidr)], netns=host.netns)


def wait_reaches(src: Container | Host, dst: str, timeout: float = 15.0) -> None:
    """Poll until `src` pings `dst`; TimeoutError otherwise."""
    wait_until(lambda: src.ping(dst, timeout=1.0), timeout=timeout, message=f"ping {dst}")


def reaches(src: Container | Host, dst: str, timeout: float = 10.0) -> bool:
    """Poll until `src` pings `dst` (True) or the deadline passes (False)."""
    try:
        wait_reaches(src, dst, timeout)
    except TimeoutError:
        return False
    return True


def connections(host: Host) -> str:
    return host.weave("status", "connections").stdout
