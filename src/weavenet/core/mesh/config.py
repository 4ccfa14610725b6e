"""Configuration of one mesh router (its identity and connection policy)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class RouterConfig:
    name: int
    nickname: str
    port: int = 6783
    password: bytes | None = None
    discovery: bool = True
    conn_limit: int = 200
    trusted_subnets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
