"""Persistence: one LMDB file per state directory (ACID, single file, like Weave's BoltDB).

Values are gob-encoded as Weave's are, so the keys mean what they mean in Weave's
``weavedata.db``: ``peername`` and ``directPeers``.
"""

from __future__ import annotations

from pathlib import Path

import lmdb

from weavenet.core.wire.gob import STRING, UINT, GobError, Slice, decode_value, encode_value

DB_FILE = "weavedata.db"
_VERSION = b"\x01\x00"
_TARGETS = Slice(STRING)


class Store:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DB_FILE
        self._env = lmdb.open(str(self.path), subdir=False, map_size=64 << 20, max_dbs=1, lock=True)
        with self._env.begin(write=True) as txn:
            if txn.get(b"version") is None:
                txn.put(b"version", _VERSION)

    def close(self) -> None:
        self._env.close()

    def _get(self, key: bytes) -> bytes | None:
        with self._env.begin() as txn:
            value = txn.get(key)
        return bytes(value) if value is not None else None

    def _put(self, key: bytes, value: bytes) -> None:
        with self._env.begin(write=True) as txn:
            txn.put(key, value)

    def load_peer_name(self) -> int | None:
        raw = self._get(b"peername")
        if raw is None:
            return None
        try:
            value = decode_value(raw, UINT)
        except GobError:
            return None
        return value if isinstance(value, int) else None

    def save_peer_name(self, name: int) -> None:
        self._put(b"peername", encode_value(UINT, name))

    def load_targets(self) -> list[str] | None:
        raw = self._get(b"directPeers")
        if raw is None:
            return None
        try:
            value = decode_value(raw, _TARGETS)
        except GobError:
            return None
        return [str(v) for v in value] if isinstance(value, list) else None

    def save_targets(self, targets: list[str]) -> None:
        self._put(b"directPeers", encode_value(_TARGETS, targets))
