"""What the core asks the shells to do. The core returns these; it never acts itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Send:
    """Write bytes to a connection."""

    conn: int
    data: bytes


@dataclass(frozen=True)
class Close:
    """Close a connection; the core has already forgotten it."""

    conn: int
    reason: str


@dataclass(frozen=True)
class Dial:
    """Open a TCP connection to ``host:port`` and report back with ``connection_opened``."""

    address: str
    host: str
    port: int


@dataclass(frozen=True)
class PersistTargets:
    """Store the user's target list so that ``--resume`` can restore it."""

    targets: tuple[str, ...]


Effect = Send | Close | Dial | PersistTargets
