"""Which peer owns which MAC address (weave-wire §7.8; ``weave:router/mac_cache.go``).

Learning is purely from data frames: a locally captured frame teaches ``srcMAC ->
ourself``, a frame forwarded to us teaches ``srcMAC -> record src`` (forced). An
entry's ``last seen`` is refreshed at most every ``MAC_MAX_AGE / 10`` and the entry
expires ``MAC_MAX_AGE`` after that; entries of a GC'd peer are purged.
"""

from __future__ import annotations

MAC_MAX_AGE = 600.0
_REFRESH = MAC_MAX_AGE / 10


class MacCache:
    """MAC (6 bytes) -> (peer name, last seen). Sans-IO: callers pass ``now``."""

    __slots__ = ("_table", "generation")

    def __init__(self) -> None:
        self._table: dict[bytes, tuple[int, float]] = {}
        # Bumped whenever a MAC is added, moves or goes (not on a refresh): a consumer of
        # the owners (fastdp's kernel plan) compares it to what it planned last.
        self.generation = 0

    def __len__(self) -> int:
        return len(self._table)

    def claim(
        self, mac: bytes, peer: int, now: float, force: bool = False
    ) -> tuple[bool, int | None]:
        """Go's ``MacCache.add``: (new or moved?, the other peer it was/is at).

        * unknown MAC: added -> ``(True, None)``;
        * known at ``peer``: last-seen refreshed if older than ``MAC_MAX_AGE/10`` ->
          ``(False, None)``;
        * known at another peer ``Q``: without ``force`` nothing changes and ``(False, Q)``
          reports the conflict; with ``force`` the MAC moves -> ``(True, Q)``.
        """
        entry = self._table.get(mac)
        if entry is None:
            self._table[mac] = (peer, now)
            self.generation += 1
            return True, None
        owner, seen = entry
        if owner == peer:
            if now - seen >= _REFRESH:
                self._table[mac] = (peer, now)
            return False, None
        if not force:
            return False, owner
        self._table[mac] = (peer, now)
        self.generation += 1
        return True, owner

    def learn(self, mac: bytes, peer: int, now: float, force: bool = False) -> bool:
        """True when ``mac`` is new or moved to ``peer`` (the caller logs a discovery).

        An entry at another peer (e.g. a local MAC) is only overridden with ``force``.
        """
        return self.claim(mac, peer, now, force)[0]

    def lookup(self, mac: bytes) -> int | None:
        entry = self._table.get(mac)
        return None if entry is None else entry[0]

    def expire(self, now: float) -> list[bytes]:
        """Drop entries not seen for more than ``MAC_MAX_AGE``; returns their MACs."""
        old = [mac for mac, (_, seen) in self._table.items() if now - seen > MAC_MAX_AGE]
        for mac in old:
            del self._table[mac]
        self.generation += bool(old)
        return old

    def forget_peer(self, peer: int) -> list[bytes]:
        """Drop every MAC at ``peer`` (the peer was garbage-collected)."""
        gone = [mac for mac, (owner, _) in self._table.items() if owner == peer]
        for mac in gone:
            del self._table[mac]
        self.generation += bool(gone)
        return gone

    def entries(self) -> list[tuple[bytes, int, float]]:
        """(mac, peer, last seen) sorted by MAC, for the /report ``MACs`` list."""
        return [(mac, peer, seen) for mac, (peer, seen) in sorted(self._table.items())]
