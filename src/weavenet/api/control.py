"""The contract between the HTTP edge and the router.

The router (``weavenet.daemon``) implements :class:`RouterControl`; the HTTP API,
the status renderers and the metrics collector only ever talk to it through this
Protocol, so they can be tested against a fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


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

    def connect(self, peers: Sequence[str], replace: bool) -> list[str]:
        """Add ``peers`` (host[:port]) to the targets, or make them the whole
        target set when ``replace``; return one message per bad address."""
        ...

    def forget(self, peers: Sequence[str]) -> None:
        """Remove ``peers`` from the targets (live connections stay up)."""
        ...
