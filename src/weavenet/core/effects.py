"""What the core asks the shells to do. The core returns these; it never acts itself."""

from __future__ import annotations

import msgspec


class Send(msgspec.Struct, frozen=True):
    """Write bytes to a connection."""

    conn: int
    data: bytes


class Close(msgspec.Struct, frozen=True):
    """Close a connection; the core has already forgotten it."""

    conn: int
    reason: str


class Dial(msgspec.Struct, frozen=True):
    """Open a TCP connection to ``host:port`` and report back with ``connection_opened``."""

    address: str
    host: str
    port: int


class PersistTargets(msgspec.Struct, frozen=True):
    """Store the user's target list so that ``--resume`` can restore it."""

    targets: tuple[str, ...]


Effect = Send | Close | Dial | PersistTargets
