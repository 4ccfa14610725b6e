"""Configuration of one mesh router (its identity and connection policy)."""

from __future__ import annotations

import ipaddress

import msgspec


class RouterConfig(msgspec.Struct, frozen=True):
    name: int
    nickname: str
    port: int = 6783
    password: bytes | None = None
    discovery: bool = True
    conn_limit: int = 200
    trusted_subnets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
