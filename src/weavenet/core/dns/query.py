"""What one DNS query can turn into, shared by the resolver, its library path and the
upstream forwarder; nothing here needs the DNS library."""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

Transport = Literal["udp", "tcp"]
MAX_TCP_SIZE = 65535


class Forward(msgspec.Struct, frozen=True):
    """Ask the upstream servers; answer the client with what they say."""

    query: bytes  # as the client sent it
    client_id: int
    question: bytes  # wire form of the question, to match the upstream's answer
    max_size: int  # the largest answer the client takes over its transport
    servfail: bytes  # the answer when every upstream fails


class NameLookup(Protocol):
    def lookup_name_tuple(self, lower_fqdn: str) -> tuple[int, ...]: ...
    def lookup_addr(self, addr: int) -> str | None: ...
