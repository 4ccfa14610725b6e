"""Test helpers: a fake :class:`RouterControl` and a threaded HTTP server.

Used by this package's tests and usable by anyone who needs a router API
without a router (e.g. CLI tests).
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from weavenet.api.http import start_http
from weavenet.api.status_text import status_summary


def sample_report() -> dict[str, Any]:
    """A small, self-consistent report in the Weave 2.8 shape (IPAM and DNS enabled)."""
    me, other = "a2:00:00:00:00:01", "a2:00:00:00:00:02"
    return {
        "Ready": True,
        "Version": "2.8.1",
        "VersionCheck": {
            "Enabled": False,
            "Success": False,
            "NewVersion": "",
            "NextCheckAt": "0001-01-01T00:00:00Z",
        },
        "Router": _router(me, other),
        "IPAM": {
            "Paxos": None,
            "Range": "10.32.0.0/12",
            "RangeNumIPs": 1048576,
            "ActiveIPs": 1,
            "DefaultSubnet": "10.32.0.0/12",
            "Entries": [
                _ipam_entry("10.32.0.0", me, "host1"),
                _ipam_entry("10.40.0.0", other, "host2"),
            ],
            "PendingClaims": None,
            "PendingAllocates": None,
        },
        "DNS": {
            "Domain": "weave.local.",
            "Upstream": ["8.8.8.8"],
            "Address": "127.0.0.1:53",
            "TTL": 1,
            "Entries": [],
        },
    }


def _ipam_entry(token: str, peer: str, nick: str) -> dict[str, Any]:
    return {
        "Token": token,
        "Size": 524288,
        "Peer": peer,
        "Nickname": nick,
        "IsKnownPeer": True,
        "Version": 1,
    }


def _peer(name: str, nick: str, to: tuple[str, str, str], outbound: bool) -> dict[str, Any]:
    """A peer with one established connection ``to`` = (name, nick, address)."""
    conn: dict[str, Any] = {"Name": to[0], "NickName": to[1], "Address": to[2]}
    conn |= {"Outbound": outbound, "Established": True}
    return {"Name": name, "NickName": nick, "UID": 1, "ShortID": 1, "Version": 2,
            "Connections": [conn]}  # fmt: skip


def _router(me: str, other: str) -> dict[str, Any]:
    return {
        "Protocol": "weave",
        "ProtocolMinVersion": 1,
        "ProtocolMaxVersion": 2,
        "Encryption": False,
        "PeerDiscovery": True,
        "Name": me,
        "NickName": "host1",
        "Port": 6783,
        "Peers": [
            _peer(me, "host1", (other, "host2", "10.0.0.2:40000"), outbound=False),
            _peer(other, "host2", (me, "host1", "10.0.0.1:6783"), outbound=True),
        ],
        "UnicastRoutes": [],
        "BroadcastRoutes": [],
        "Connections": [
            {
                "Address": "10.0.0.2:40000",
                "Outbound": False,
                "State": "established",
                "Info": f"sleeve {other}(host2)",
                "Attrs": {"mtu": 1438, "name": "sleeve"},
            }
        ],
        "TerminationCount": 0,
        "Targets": None,
        "OverlayDiagnostics": {"sleeve": None},
        "TrustedSubnets": [],
        "Interface": "vethwe-pcap (via pcap)",
        "CaptureStats": {},
        "MACs": [],
    }


class FakeRouterControl:
    """An in-memory :class:`RouterControl`: ``report`` is a deep copy of ``state``.

    ``connect`` rejects addresses whose port is not a number (or that are empty),
    with one error message each; calls are recorded in ``calls``.
    """

    def __init__(self, report: dict[str, Any] | None = None) -> None:
        self.state: dict[str, Any] = copy.deepcopy(report) if report else sample_report()
        self.calls: list[tuple[str, list[str], bool]] = []
        self._lock = threading.Lock()

    def report(self, *, routes: bool = True) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.state)

    def status_report(self) -> dict[str, Any]:
        """Made from ``report()`` (which subclasses may extend), as the real router's
        must come out."""
        return status_summary(self.report())

    def _targets(self) -> list[str]:
        router = self.state.setdefault("Router", {})
        targets: list[str] = router.get("Targets") or []
        return targets

    def connect(self, peers: Sequence[str], replace: bool) -> list[str]:
        with self._lock:
            self.calls.append(("connect", list(peers), replace))
            errors = [
                f"invalid peer address {p!r}: expected host[:port]" for p in peers if not _valid(p)
            ]
            if errors:
                return errors
            targets = [] if replace else self._targets()
            targets += [p for p in peers if p not in targets]
            self.state["Router"]["Targets"] = targets or None
            return []

    def forget(self, peers: Sequence[str]) -> None:
        with self._lock:
            self.calls.append(("forget", list(peers), False))
            remaining = [t for t in self._targets() if t not in peers]
            self.state["Router"]["Targets"] = remaining or None


def _valid(peer: str) -> bool:
    host, sep, port = peer.rpartition(":")
    if not sep:
        host, port = peer, "6783"
    return bool(host) and " " not in host and port.isdigit()


@contextmanager
def serve_in_thread(app: web.Application, addr: str = "127.0.0.1:0") -> Iterator[str]:
    """Serve ``app`` from a background thread; yield the address clients should use."""
    loop = asyncio.new_event_loop()
    started: list[web.AppRunner] = []
    failures: list[BaseException] = []
    ready = threading.Event()

    async def start() -> None:
        try:
            started.append(await start_http(app, addr))
        except BaseException as exc:  # reported to the caller below
            failures.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=loop.run_forever, name="weave-http-test", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    ready.wait(timeout=10)
    try:
        if failures:
            raise failures[0]
        if not started:
            raise RuntimeError(f"test HTTP server did not start on {addr} within 10s")
        yield _bound_address(started[0], addr)
    finally:
        if started:
            asyncio.run_coroutine_threadsafe(started[0].cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _bound_address(runner: web.AppRunner, addr: str) -> str:
    if addr.startswith("/"):
        return addr
    host, port = runner.addresses[0][:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
