"""The DNS query answerer (Go nameserver/dns.go semantics, weave-surface.md §5), sans-IO.

``Resolver.answer`` turns one query into an answer (bytes), a Forward decision (names
outside the domain, reverse lookups we cannot answer) or None (garbage shorter than a
header, or a message that is itself a response).  The common query takes FastPath;
everything else takes the library path (weavenet.core.dns.library_path, dnspython),
imported on the first query that needs it: most routers never do.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec

from weavenet.core.dns.fastpath import HEADER_LEN, MAX_NAME_LEN, FastPath
from weavenet.core.dns.nameserver import DEFAULT_DOMAIN, fqdn
from weavenet.core.dns.query import Forward, NameLookup, Transport

if TYPE_CHECKING:
    from weavenet.core.dns.library_path import LibraryPath

__all__ = [
    "DEFAULT_TTL",
    "Forward",
    "NameLookup",
    "Resolver",
    "ResolverConfig",
    "Transport",
    "networks",
    "pick_answers",
]

DEFAULT_TTL = 1
LOOPBACK = ("127.0.0.0/8", "::1/128")
# A domain dnspython renders as it is written (no escapes), so its key needs no library.
_PLAIN_DOMAIN = re.compile(r"(?:[A-Za-z0-9_-]{1,63}\.)+")


class ResolverConfig(msgspec.Struct, frozen=True):
    domain: str = DEFAULT_DOMAIN
    ttl: int = DEFAULT_TTL
    all_answers: bool = False  # every address in a fresh random order, as Weave does
    allowed_networks: tuple[str, ...] = ()  # CIDRs whose clients we recurse for
    open_recursion: bool = False  # recurse for anybody


def pick_answers(addrs: tuple[int, ...], all_answers: bool, rng: random.Random) -> list[int]:
    """One address uniformly at random (balances clients that re-sort answers, as glibc
    does), or all of them in a fresh random order."""
    if all_answers:
        shuffled = list(addrs)
        rng.shuffle(shuffled)
        return shuffled
    return [addrs[rng.randrange(len(addrs))] if len(addrs) > 1 else addrs[0]]


def lookup_key(domain: str) -> str:
    """The domain as the fast path matches it: what dnspython renders, lower-cased.
    Only a domain with escapes (or one that is no DNS name) needs the library for it."""
    name = fqdn(domain)
    if _PLAIN_DOMAIN.fullmatch(name) and len(name) < MAX_NAME_LEN:  # wire: one more byte
        return name.lower()
    from weavenet.core.dns.library_path import domain_key

    return domain_key(name)


class Resolver:
    def __init__(self, config: ResolverConfig, names: NameLookup) -> None:
        self.config = config
        self._names = names
        self._allowed = tuple(  # the host's own processes may always recurse
            ipaddress.ip_network(c, strict=False) for c in (*config.allowed_networks, *LOOPBACK)
        )
        key = lookup_key(config.domain)
        self._fast = FastPath(key, config.ttl, names.lookup_name_tuple, self._pick)
        self._library: LibraryPath | None = None

    def _pick(self, addrs: tuple[int, ...], rng: random.Random) -> list[int]:
        return pick_answers(addrs, self.config.all_answers, rng)

    def answer(
        self, query: bytes, client: str, transport: Transport, now: float, rng: random.Random
    ) -> bytes | Forward | None:
        if len(query) < HEADER_LEN or query[2] & 0x80:
            return None  # garbage, or a response: answering could start a loop
        fast = self._fast.answer(query, transport == "udp", rng)
        if fast is not None:
            return fast
        return self.slow_answer(query, client, transport, rng)

    def slow_answer(
        self, query: bytes, client: str, transport: Transport, rng: random.Random
    ) -> bytes | Forward | None:
        """The library path (public so that tests can hold the fast path to it)."""
        return self._library_path().answer(query, client, transport, rng)

    def _library_path(self) -> LibraryPath:
        if self._library is None:
            from weavenet.core.dns.library_path import LibraryPath

            domain = fqdn(self.config.domain)
            self._library = LibraryPath(
                domain, self.config.ttl, self._names, self._pick, self._may_recurse
            )
        return self._library

    def _may_recurse(self, client: str) -> bool:
        if self.config.open_recursion:
            return True
        try:
            addr = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(addr in net for net in self._allowed)


def networks(cidrs: Iterable[str]) -> tuple[str, ...]:
    """Validate CIDR texts for ResolverConfig.allowed_networks (ValueError if bad)."""
    return tuple(str(ipaddress.ip_network(c, strict=False)) for c in cidrs)
