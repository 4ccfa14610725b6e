"""Peer names: 48-bit integers written like MAC addresses (mesh's "mac" flavour)."""

from __future__ import annotations

import functools

PEER_NAME_FLAVOUR = "mac"
NAME_SIZE = 6
UNKNOWN_PEER_NAME = 0
_MAX = (1 << 48) - 1


@functools.lru_cache(maxsize=8192)
def format_peer_name(name: int) -> str:
    """``0xaabbccddeeff`` -> ``"aa:bb:cc:dd:ee:ff"`` (memoised: status lists repeat names)."""
    return name.to_bytes(NAME_SIZE, "big").hex(":")


def parse_peer_name(text: str) -> int:
    """Parse a MAC-style peer name; accepts ``::``-abbreviated forms such as ``::1``.

    Raises ValueError with a message naming the bad input.
    """
    text = text.strip()
    if text.count("::") > 1:
        raise ValueError(f"invalid peer name {text!r}")
    if "::" in text:
        head, tail = text.split("::")
        head_parts = head.split(":") if head else []
        tail_parts = tail.split(":") if tail else []
        missing = NAME_SIZE - len(head_parts) - len(tail_parts)
        if missing < 1:
            raise ValueError(f"invalid peer name {text!r}")
        parts = head_parts + ["0"] * missing + tail_parts
    else:
        parts = text.split(":")
    if len(parts) != NAME_SIZE:
        raise ValueError(f"invalid peer name {text!r}: want 6 hex bytes like aa:bb:cc:dd:ee:ff")
    value = 0
    for part in parts:
        if not 1 <= len(part) <= 2 or any(c not in "0123456789abcdefABCDEF" for c in part):
            raise ValueError(f"invalid peer name {text!r}: bad byte {part!r}")
        value = (value << 8) | int(part, 16)
    return value


def peer_name_to_bytes(name: int) -> bytes:
    """The 6-byte big-endian form used by the sleeve and topology ``NameByte``."""
    return name.to_bytes(NAME_SIZE, "big")


def peer_name_from_bytes(data: bytes) -> int:
    if len(data) != NAME_SIZE:
        raise ValueError(f"peer name must be {NAME_SIZE} bytes, got {len(data)}")
    return int.from_bytes(data, "big")


def is_valid_peer_name(name: int) -> bool:
    return 0 < name <= _MAX
