"""Where a router's name comes from when ``--name`` is not given."""

from __future__ import annotations

import hashlib
from pathlib import Path

from weavenet.core.peername import parse_peer_name
from weavenet.io.store import Store

DEFAULT_STATE_DIR = Path("/var/lib/weave")
_SALT = b"9oBJ0Jmip-"  # Weave's, so a default install derives the name Weave would


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes().strip()
    except OSError:
        return b""


def derive_peer_name(state_dir: Path) -> int:
    """SHA256(salt || machine-id || product_uuid), as weave's GetSystemPeerName, made a
    unicast, locally administered MAC. A non-default state directory is mixed in so
    that several routers sharing one filesystem (simulated hosts) get distinct names."""
    material = _SALT + _read("/etc/machine-id") + _read("/sys/class/dmi/id/product_uuid")
    if state_dir.resolve() != DEFAULT_STATE_DIR:
        material += str(state_dir.resolve()).encode()
    digest = bytearray(hashlib.sha256(material).digest()[:6])
    digest[0] = (digest[0] & 0xFE) | 0x02
    return int.from_bytes(digest, "big")


def resolve_peer_name(explicit: str | None, store: Store, state_dir: Path) -> int:
    """``--name`` wins; else the name kept in the state directory; else derive and keep."""
    if explicit:
        name = parse_peer_name(explicit)
    else:
        name = store.load_peer_name() or derive_peer_name(state_dir)
    store.save_peer_name(name)
    return name
