"""The contract between the HTTP edge and the router.

The router (``weavenet.daemon``) implements :class:`RouterControl`; the HTTP API,
the status renderers and the metrics collector only ever talk to it through this
Protocol, so they can be tested against a fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from weavenet.core.ipam.address import CIDR


@runtime_checkable
class RouterControl(Protocol):
    """What the HTTP API needs from a running router."""

    def report(self, *, routes: bool = True) -> dict[str, Any]:
        """Return the Weave ``/report`` JSON document as plain Python data.

        With ``routes`` false the (costly, per-source) ``UnicastRoutes`` and
        ``BroadcastRoutes`` may be left out: status texts and metrics never use them.

        Shape (see samples/h1-plain-report.json): ``Ready``, ``Version``,
        ``VersionCheck``, ``Router`` {Protocol, ProtocolMinVersion,
        ProtocolMaxVersion, Encryption, PeerDiscovery, Name, NickName, Port,
        Peers, UnicastRoutes, BroadcastRoutes, Connections, TerminationCount,
        Targets, OverlayDiagnostics, TrustedSubnets, Interface, CaptureStats,
        MACs}; optional ``IPAM`` and ``DNS`` sections, absent when disabled.
        Dict insertion order is the JSON field order.
        """
        ...

    def status_report(self) -> dict[str, Any]:
        """What ``GET /status`` prints, built without /report's lists: polled every second
        by scripts and monitoring, it must not cost O(peers x connections) in dicts.

        Shape: ``Ready``, ``Version`` and ``VersionCheck`` as in :meth:`report`;
        ``Router`` {Protocol, ProtocolMinVersion, ProtocolMaxVersion, Encryption,
        PeerDiscovery, Name, NickName, TrustedSubnets as in the report; TargetCount;
        ConnectionCounts: our connections by State (e.g. {"established": 3}); PeerCount;
        PeerConnectionCounts: every peer's connections, {"established": n, "pending": m}};
        ``IPAM`` {Status, Awaiting, Range, DefaultSubnet} and ``DNS`` {Domain, Upstream,
        TTL, EntryCount: live entries}, absent when disabled. A zero count means none.
        ``weavenet.api.status_text.status_summary`` makes the same from a full report.
        """
        ...

    def connect(self, peers: Sequence[str], replace: bool) -> list[str]:
        """Add ``peers`` (host[:port]) to the targets, or make them the whole
        target set when ``replace``; return one message per bad address."""
        ...

    def forget(self, peers: Sequence[str]) -> None:
        """Remove ``peers`` from the targets (live connections stay up)."""
        ...


class IpamRequestFailed(Exception):
    """A long-running IPAM request (allocate, claim) was refused; ``str()`` is Go's HTTP
    body text (e.g. "Unable to claim: address 10.32.0.1 is already owned by ...")."""


class IpamCancelled(Exception):
    """A long-running IPAM request was cancelled (Go answers with the body "cancelled")."""


@runtime_checkable
class IpamControl(Protocol):
    """What the IPAM HTTP routes need from a running allocator (``io.ipam_shell``).

    Immediate calls raise ``weavenet.core.ipam.allocator.IpamError`` with Go's text on a bad
    request; mutating calls return once the change is committed to the store."""

    default_subnet: CIDR

    async def allocate(self, ident: str, subnet: CIDR) -> CIDR:
        """An address for ``ident`` in ``subnet`` (the existing one if it has one); waits
        for the ring and for free space. Raises IpamRequestFailed or IpamCancelled."""
        ...

    async def claim(self, ident: str, cidr: CIDR, no_error_on_unknown: bool) -> None:
        """Record ``cidr`` as ``ident``'s; may wait for the ring or the owner."""
        ...

    async def prime(self) -> None:
        """Return once the ring exists (``GET /ring``)."""
        ...

    def lookup(self, ident: str, subnet: CIDR | None) -> list[CIDR]: ...

    def owned(self) -> dict[str, list[CIDR]]: ...

    async def free(self, ident: str, addr: int) -> None: ...

    async def delete(self, ident: str) -> None: ...

    async def shutdown(self) -> None:
        """``weave reset``: hand our ranges to an heir and forget the persisted state."""
        ...

    async def admin_takeover(self, peer: str) -> int:
        """``weave rmpeer``: take over the ranges of peer (name or nickname); #IPs."""
        ...

    def cancel_all(self) -> None:
        """The server is stopping: every request still waiting is answered "cancelled"."""
        ...
