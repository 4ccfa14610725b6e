"""The kernel side of the DNS listen addresses: one address per attached subnet on the
weave bridge (issue 7; see weavenet.io.dns_listeners). Idempotent, like `weave expose`.

Nothing is added to the firewall: our nftables table filters only forwarded traffic
(weavenet.dataplane.bridge), and traffic to an address of the bridge itself takes the
INPUT hook, which we leave alone. A host firewall that drops UDP/TCP 53 arriving on the
bridge must allow it (an accept in a table of ours could not override another table's drop).
"""

from __future__ import annotations

import ipaddress

from weavenet.dataplane.bridge import DEFAULT_BRIDGE, bridge_addresses, set_bridge_address


def ensure_dns_address(
    cidr: ipaddress.IPv4Interface, bridge: str = DEFAULT_BRIDGE, netns: str | None = None
) -> bool:
    """Put ``cidr`` (e.g. 10.32.0.2/12) on the bridge and bring it up; True if it changed.
    DataplaneError (with the kernel's text) when the bridge is missing."""
    return set_bridge_address(cidr, True, bridge, netns)


def remove_dns_address(
    cidr: ipaddress.IPv4Interface, bridge: str = DEFAULT_BRIDGE, netns: str | None = None
) -> bool:
    """Take ``cidr`` off the bridge (weave reset); True if it was there."""
    return set_bridge_address(cidr, False, bridge, netns)


def bridge_address_in(
    network: ipaddress.IPv4Network, bridge: str = DEFAULT_BRIDGE, netns: str | None = None
) -> ipaddress.IPv4Interface | None:
    """An address the bridge already has in ``network`` (e.g. from `weave expose`)."""
    _mac, addrs = bridge_addresses(bridge, netns)
    return next((a for a in addrs if a.ip in network), None)
