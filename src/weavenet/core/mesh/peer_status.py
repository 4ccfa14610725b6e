"""The /report ``Peers`` rows of the topology table (Go ``mesh:status.go:PeerStatus``),
kept per peer between calls."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from weavenet.core.mesh.peer import Peer
from weavenet.core.peername import format_peer_name


class Table(Protocol):
    """What the rows are built from (Peers)."""

    def __iter__(self) -> Iterator[Peer]: ...

    def unordered(self) -> Iterable[Peer]: ...

    def get(self, name: int) -> Peer | None: ...


class PeerStatusRows:
    """Building the rows is O(peers x connections) and every ``/status`` asks for them,
    polled by tools while the mesh converges, when some entry changes all the time: each
    peer's row is rebuilt only when its own entry changed (its connections change only
    with its Version), and all of them when some peer's nickname did (rows show the
    remotes' nicknames). Each call gets its own row dicts; their ``Connections`` lists
    are shared."""

    def __init__(self) -> None:
        # per peer, its row and what it was built from
        self._rows: dict[int, tuple[tuple[int, int, int, int], dict[str, Any]]] = {}
        self._nicks: tuple[tuple[int, str], ...] = ()

    def rows(self, table: Table) -> list[dict[str, Any]]:
        nicks = tuple((p.name, p.nickname) for p in table.unordered())
        if nicks != self._nicks:
            self._rows, self._nicks = {}, nicks
        rows = []
        for peer in table:
            key = (peer.uid, peer.version, peer.short_id, len(peer.connections))
            cached = self._rows.get(peer.name)
            if cached is None or cached[0] != key:
                cached = self._rows[peer.name] = (key, _row(table, peer))
            rows.append(dict(cached[1]))
        if len(self._rows) > len(rows):  # rows of peers that are gone
            known = {name for name, _ in nicks}
            self._rows = {n: r for n, r in self._rows.items() if n in known}
        return rows


def _row(table: Table, peer: Peer) -> dict[str, Any]:
    return {
        "Name": format_peer_name(peer.name),
        "NickName": peer.nickname,
        "UID": peer.uid,
        "ShortID": peer.short_id,
        "Version": peer.version,
        "Connections": _connections(table, peer) or None,
    }


def _connections(table: Table, peer: Peer) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for remote, conn in sorted(peer.connections.items()):
        remote_peer = table.get(remote)
        result.append(
            {
                "Name": format_peer_name(remote),
                "NickName": remote_peer.nickname if remote_peer is not None else "",
                "Address": conn.remote_tcp_addr,
                "Outbound": conn.outbound,
                "Established": conn.established,
            }
        )
    return result
