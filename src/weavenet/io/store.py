"""Persistence: one LMDB file per state directory (ACID, single file, like Weave's BoltDB).

Values are gob-encoded as Weave's are, so the keys mean what they mean in Weave's
``weavedata.db``: ``peername`` and ``directPeers``. Keys of our own (JSON values):
``attachment:<ident>`` (one per attached container), ``cni:<ident>`` (one per container
attached through CNI), ``exposed`` (the bridge addresses
of ``weave expose``) and ``attachments-schema`` (their layout version, "1").
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import lmdb

from weavenet.core.attachments import Attachment
from weavenet.core.cni_gc import CniRecord
from weavenet.core.errors import WeaveError
from weavenet.core.ipam.address import CIDR
from weavenet.core.ipam.allocator import PersistOwned, PersistRing
from weavenet.core.wire.gob import STRING, UINT, GobError, Slice, decode_value, encode_value

DB_FILE = "weavedata.db"
_VERSION = b"\x01\x00"
_TARGETS = Slice(STRING)
log = logging.getLogger("weavenet.store")
RESERVED_SIZE = 4 << 20  # IPAM: ~40,000 allocations before the data file grows again


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

    # --- attachments and exposed addresses (ours, JSON values; Weave has no such keys) ----

    def load_attachments(self) -> list[Attachment]:
        with self._env.begin() as txn:
            return _attachments_in(txn)

    def save_attachments(self, put: Sequence[Attachment] = (), drop: Sequence[str] = ()) -> None:
        """Record `put` and forget the idents in `drop`, in one transaction."""
        with self._env.begin(write=True) as txn:
            txn.put(_ATTACHMENTS_SCHEMA_KEY, _ATTACHMENTS_SCHEMA)
            for ident in drop:
                txn.delete(_ATTACHMENT + ident.encode())
            for att in put:
                txn.put(_ATTACHMENT + att.ident.encode(), json.dumps(att.to_record()).encode())

    def load_exposed(self) -> list[ExposedRecord]:
        with self._env.begin() as txn:
            return _exposed_in(txn)

    def save_exposed(self, exposed: Sequence[ExposedRecord]) -> None:
        data = [{"cidr": str(c), "masquerade": m} for c, m in exposed]
        self._put(_EXPOSED, json.dumps(data).encode())

    # --- containers attached through CNI ("cni:<ident>", JSON; for the missed-DEL GC) ----

    def load_cni(self) -> list[CniRecord]:
        with self._env.begin() as txn:
            cursor = txn.cursor()
            found = []
            if cursor.set_range(_CNI):
                for key, value in cursor:
                    if not bytes(key).startswith(_CNI):
                        break
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        found.append(CniRecord.from_json(json.loads(bytes(value))))
            return found

    def save_cni(self, record: CniRecord) -> None:
        self._put(_CNI + record.ident.encode(), json.dumps(record.to_json()).encode())

    def drop_cni(self, ident: str) -> None:
        with self._env.begin(write=True) as txn:
            txn.delete(_CNI + ident.encode())

    # ---- IPAM (ring, owned addresses) ------------------------------------------------
    # "ring" holds the allocator's gob(*Ring) exactly as Go's key does; owned addresses
    # are one key per ident ("owned:<ident>", JSON {"container": bool, "cidrs": [...]}).
    # "ipam-schema" versions that layout: data of another version is dropped, not misread.

    def load_ipam(self) -> tuple[bytes | None, dict[str, tuple[bool, list[CIDR]]]]:
        """The persisted ring and owned addresses (empty if none or of another schema)."""
        with self._env.begin(write=True) as txn:
            if txn.get(_IPAM_SCHEMA_KEY) not in (None, _IPAM_SCHEMA):
                log.warning("Deleting persisted IPAM data of an unknown schema version")
                _clear_ipam(txn)
            ring = txn.get(_RING_KEY)
            owned: dict[str, tuple[bool, list[CIDR]]] = {}
            for key in _owned_keys(txn):
                entry = _decode_owned(bytes(txn.get(key, b"")))
                if entry is not None:
                    owned[key[len(_OWNED_PREFIX) :].decode(errors="replace")] = entry
        return (bytes(ring) if ring is not None else None), owned

    def reserve_space(self, size: int = RESERVED_SIZE) -> None:
        """Grow the data file to ``size`` bytes of zeros, once. LMDB ignores the pages past
        its last one; a commit that grows the file must also sync the file's metadata,
        which made one commit in a hundred 20-40 times slower (8 ms instead of 0.2)."""
        with self.path.open("r+b") as data:
            end = data.seek(0, 2)
            if end >= size:
                return
            while end < size:
                end += data.write(bytes(min(size - end, 1 << 20)))
            data.flush()
            os.fsync(data.fileno())

    def save_ipam(self, changes: Sequence[PersistRing | PersistOwned]) -> None:
        """Apply a batch of IPAM changes, in order, in one write transaction."""
        with self._env.begin(write=True) as txn:
            txn.put(_IPAM_SCHEMA_KEY, _IPAM_SCHEMA)
            for change in changes:
                if isinstance(change, PersistRing):
                    if change.data is None:
                        txn.delete(_RING_KEY)
                    else:
                        txn.put(_RING_KEY, change.data)
                    continue
                key = _OWNED_PREFIX + change.ident.encode()
                if change.cidrs:
                    txn.put(key, _encode_owned(change.is_container, change.cidrs))
                else:
                    txn.delete(key)


_CNI = b"cni:"
_RING_KEY = b"ring"
_OWNED_PREFIX = b"owned:"
_IPAM_SCHEMA_KEY = b"ipam-schema"
_IPAM_SCHEMA = b"1"


def _owned_keys(txn: lmdb.Transaction) -> list[bytes]:
    cursor = txn.cursor()
    if not cursor.set_range(_OWNED_PREFIX):
        return []
    return [bytes(k) for k in cursor.iternext(values=False) if bytes(k).startswith(_OWNED_PREFIX)]


def _clear_ipam(txn: lmdb.Transaction) -> None:
    for key in (_RING_KEY, _IPAM_SCHEMA_KEY, *_owned_keys(txn)):
        txn.delete(key)


def _encode_owned(is_container: bool, cidrs: Sequence[CIDR]) -> bytes:
    return json.dumps({"container": is_container, "cidrs": [str(c) for c in cidrs]}).encode()


def _decode_owned(raw: bytes) -> tuple[bool, list[CIDR]] | None:
    try:
        data = json.loads(raw)
        return bool(data["container"]), [CIDR.parse(str(c)) for c in data["cidrs"]]
    except (ValueError, KeyError, TypeError):
        log.warning("Ignoring an unreadable persisted IPAM entry")
        return None


ExposedRecord = tuple[ipaddress.IPv4Interface, bool]  # (address on the bridge, masquerade)
_ATTACHMENT = b"attachment:"
_ATTACHMENTS_SCHEMA_KEY = b"attachments-schema"  # versions the attachment: and exposed keys
_ATTACHMENTS_SCHEMA = b"1"
_EXPOSED = b"exposed"


def _attachments_in(txn: lmdb.Transaction) -> list[Attachment]:
    """Every attachment record; none (with a warning) if they are of another schema, which
    a later release migrates rather than this one misreading them."""
    schema = txn.get(_ATTACHMENTS_SCHEMA_KEY)
    if schema is not None and bytes(schema) != _ATTACHMENTS_SCHEMA:
        log.warning("Ignoring persisted attachments of schema version %r", bytes(schema))
        return []
    found = []
    cursor = txn.cursor()
    if not cursor.set_range(_ATTACHMENT):
        return []
    for key, value in cursor:
        if not bytes(key).startswith(_ATTACHMENT):
            break
        try:
            found.append(Attachment.from_record(json.loads(bytes(value))))
        except ValueError as exc:
            log.error("Ignoring persisted attachment %r: %s", bytes(key), exc)
    return found


def _exposed_in(txn: lmdb.Transaction) -> list[ExposedRecord]:
    raw = txn.get(_EXPOSED)
    if raw is None:
        return []
    try:
        return [
            (ipaddress.IPv4Interface(e["cidr"]), bool(e.get("masquerade", True)))
            for e in json.loads(bytes(raw))
        ]
    except (KeyError, TypeError, ValueError) as exc:
        log.error("Ignoring persisted exposed addresses: %r", exc)
        return []


def read_attachments(state_dir: Path) -> tuple[list[Attachment], list[ExposedRecord]] | None:
    """The persisted attachments and exposed addresses, read-only (for `weave ps`, which
    runs in another process, whether the router is up or down); None if there is no store."""
    path = state_dir / DB_FILE
    if not path.exists():
        return None
    try:
        env = lmdb.open(str(path), subdir=False, readonly=True, lock=True, max_dbs=1)
    except lmdb.Error as exc:
        raise WeaveError(f"cannot read the router's store {path}: {exc}") from exc
    try:
        with env.begin() as txn:
            return _attachments_in(txn), _exposed_in(txn)
    finally:
        env.close()
