"""What bench/scale.py reads from the routers: HTTP inside a host namespace, /proc.

A probe thread enters the host's network namespace once (setns applies to the calling
thread only), so every later request is a plain socket to the router's loopback API: no
`ip netns exec` subprocess per poll, which at 100 routers would cost more CPU than the
routers themselves.
"""

from __future__ import annotations

import http.client
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import wire_clock


def _dnspython() -> object:
    """dnspython's ``dns.message`` (this folder's dns.py, bench-dns, would shadow it)."""
    here = Path(__file__).resolve().parent
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    try:
        import dns.message

        return dns.message
    finally:
        sys.path[:] = saved


_message: object = _dnspython()
DNS_PROBE_NAME = "scale-probe.weave.local."  # nobody's: answered NXDOMAIN by the router


def dns_query(addr: tuple[str, int], timeout: float = 5.0) -> float | None:
    """Seconds one A query for DNS_PROBE_NAME took to be answered at ``addr`` (this
    thread's namespace; kernel-stamped, see wire_clock.py), None if no reply came within
    ``timeout``."""
    query = _message.make_query(DNS_PROBE_NAME, "A")  # type: ignore[attr-defined]

    def answers(wire: bytes) -> bool:
        try:
            return bool(_message.from_wire(wire).id == query.id)  # type: ignore[attr-defined]
        except Exception:
            return False

    try:
        _, seconds = wire_clock.dns_exchange(query.to_wire(), addr, timeout, answers)
    except OSError:
        return None
    return seconds


_PEERS = re.compile(r"^\s*Peers: (\d+)(?: \(with (\d+) established)?", re.M)
_CONNS = re.compile(r"^\s*Connections: (\d+)(?: \((\d+) established)?", re.M)


def http_get(
    addr: str, path: str, timeout: float = 10.0, accept: str | None = None
) -> tuple[int, str]:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": accept} if accept else {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


@dataclass(frozen=True)
class MeshCounts:
    peers: int
    established_in_topology: int
    connections: int
    established: int

    def converged(self, n: int) -> bool:
        """N peers, the full mesh in the topology, N-1 established connections of its own."""
        return (
            self.peers == n and self.established_in_topology == n * (n - 1)
        ) and self.established == n - 1


def mesh_counts(status_text: str) -> MeshCounts | None:
    """The counts in the text of ``GET /status`` (ours and Go's print the same lines)."""
    peers, conns = _PEERS.search(status_text), _CONNS.search(status_text)
    if peers is None or conns is None:
        return None
    return MeshCounts(
        int(peers.group(1)),
        int(peers.group(2) or 0),
        int(conns.group(1)),
        int(conns.group(2) or 0),
    )


def metric_sum(metrics_text: str, name: str) -> float | None:
    """The sum of every sample of family `name` (all label sets), None if absent."""
    total, found = 0.0, False
    for line in metrics_text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(None, 1)[1])
            found = True
    return total if found else None


def metric_max(metrics_text: str, prefix: str) -> dict[str, float]:
    """Every sample whose name starts with `prefix` (e.g. the event-loop monitor's)."""
    found: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            key, _, value = line.rpartition(" ")
            try:
                found[key] = float(value)
            except ValueError:
                continue
    return found


def lacking(api: str) -> str:
    """What the topology of the router at `api` still lacks (this thread's namespace)."""
    try:
        _, text = http_get(api, "/report", accept="application/json")
        report = json.loads(text)["Router"]
    except (OSError, ValueError, KeyError) as exc:
        return f"no report ({exc})"
    peers = report.get("Peers") or []
    found = []
    mine = [p for p in peers if p.get("Name") == report.get("Name")]
    if mine:
        est = sum(bool(c.get("Established")) for c in mine[0].get("Connections") or [])
        found.append(f"own entry: {est} established")
    for peer in peers:
        conns = peer.get("Connections") or []
        missing = [c.get("NickName", "?") for c in conns if not c.get("Established")]
        if len(conns) != len(peers) - 1 or missing:
            found.append(f"{peer.get('NickName')}: {len(conns)} conns, not est. {missing}")
    own = [
        f"{c.get('Info', '')[:40]} {c.get('State')}"
        for c in report.get("Connections") or []
        if c.get("State") != "established"
    ]
    return f"topology {found[:6]}; own not established {own[:6]}"
