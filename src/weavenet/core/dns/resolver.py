"""The DNS query answerer (Go nameserver/dns.go semantics, weave-surface.md §5), sans-IO.

``Resolver.answer`` turns one query into an answer (bytes), a Forward decision (names
outside the domain, reverse lookups we cannot answer) or None (garbage shorter than a
header, or a message that is itself a response).  The common query takes FastPath;
everything else is parsed with dnspython.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import msgspec

from weavenet.core.dns.entries import format_ip
from weavenet.core.dns.fastpath import (
    EDNS_PAYLOAD,
    HEADER_LEN,
    FastPath,
    udp_limit,
)
from weavenet.core.dns.nameserver import DEFAULT_DOMAIN, fqdn
from weavenet.core.errors import RemoteProtocolError

Transport = Literal["udp", "tcp"]
REVERSE_ZONE = dns.name.from_text("in-addr.arpa.")
DEFAULT_TTL = 1
MAX_TCP_SIZE = 65535
RCODE_FORMERR = 1
RCODE_NOTIMP = 4
LOOPBACK = ("127.0.0.0/8", "::1/128")

# What dnspython raises on hostile bytes besides its own DNSException family.
_PARSE_ERRORS = (
    dns.exception.DNSException,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    OverflowError,
    struct.error,
    UnicodeError,
)


class DnsFormatError(RemoteProtocolError):
    """A DNS message that cannot be parsed (the client gets FORMERR)."""


class NameLookup(Protocol):
    def lookup_name_tuple(self, lower_fqdn: str) -> tuple[int, ...]: ...
    def lookup_addr(self, addr: int) -> str | None: ...


class ResolverConfig(msgspec.Struct, frozen=True):
    domain: str = DEFAULT_DOMAIN
    ttl: int = DEFAULT_TTL
    all_answers: bool = False  # every address in a fresh random order, as Weave does
    allowed_networks: tuple[str, ...] = ()  # CIDRs whose clients we recurse for
    open_recursion: bool = False  # recurse for anybody


class Forward(msgspec.Struct, frozen=True):
    """Ask the upstream servers; answer the client with what they say."""

    query: bytes  # as the client sent it
    client_id: int
    question: bytes  # wire form of the question, to match the upstream's answer
    max_size: int  # the largest answer the client takes over its transport
    servfail: bytes  # the answer when every upstream fails


def parse_query(data: bytes) -> dns.message.Message:
    """dnspython's parse; any failure becomes DnsFormatError."""
    try:
        return dns.message.from_wire(data)
    except _PARSE_ERRORS as exc:
        raise DnsFormatError(f"malformed DNS message: {exc.__class__.__name__}: {exc}") from exc


def header_only_reply(query: bytes, rcode: int) -> bytes:
    """A header-only reply (ID, opcode and RD echoed) for messages we cannot parse."""
    first = 0x80 | (query[2] & 0x79)
    return query[:2] + bytes((first, rcode)) + b"\x00" * 8


def pick_answers(addrs: tuple[int, ...], all_answers: bool, rng: random.Random) -> list[int]:
    """One address uniformly at random (balances clients that re-sort answers, as glibc
    does), or all of them in a fresh random order."""
    if all_answers:
        shuffled = list(addrs)
        rng.shuffle(shuffled)
        return shuffled
    return [addrs[rng.randrange(len(addrs))] if len(addrs) > 1 else addrs[0]]


class Resolver:
    def __init__(self, config: ResolverConfig, names: NameLookup) -> None:
        self.config = config
        self._names = names
        self._domain = dns.name.from_text(fqdn(config.domain))
        self._domain_key = self._domain.to_text().lower()
        self._allowed = tuple(  # the host's own processes may always recurse
            ipaddress.ip_network(c, strict=False) for c in (*config.allowed_networks, *LOOPBACK)
        )
        self._fast = FastPath(self._domain_key, config.ttl, names.lookup_name_tuple, self._pick)

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
        if len(query) < HEADER_LEN or query[2] & 0x80:
            return None
        if query[4:6] != b"\x00\x01":
            return header_only_reply(query, RCODE_FORMERR)
        if (query[2] >> 3) & 0x0F != 0:
            return header_only_reply(query, RCODE_NOTIMP)
        try:
            msg = parse_query(query)
        except DnsFormatError:
            return header_only_reply(query, RCODE_FORMERR)
        if msg.edns > 0:
            return self._render(msg, transport, dns.rcode.BADVERS, [], authoritative=False)
        decision = self._route(query, msg, transport, rng)
        if isinstance(decision, Forward) and not self._may_recurse(client):
            return self._render(msg, transport, dns.rcode.REFUSED, [], ra=False)
        return decision

    def _route(
        self, query: bytes, msg: dns.message.Message, transport: Transport, rng: random.Random
    ) -> bytes | Forward:
        question = msg.question[0]
        name = question.name
        if name.is_subdomain(self._domain):
            return self._local(msg, name.to_text().lower(), transport, rng)
        if len(name.labels) == 2:  # one label and the root: resolve in our domain
            return self._local(msg, name.to_text().lower() + self._domain_key, transport, rng)
        if name.is_subdomain(REVERSE_ZONE) and question.rdtype == dns.rdatatype.PTR:
            found = self._reverse(msg, transport)
            if found is not None:
                return found
        return self._forward(query, msg, transport)

    def _local(
        self, msg: dns.message.Message, key: str, transport: Transport, rng: random.Random
    ) -> bytes:
        addrs = self._names.lookup_name_tuple(key)
        if not addrs:
            return self._render(msg, transport, dns.rcode.NXDOMAIN, [])
        if msg.question[0].rdtype != dns.rdatatype.A:
            return self._render(msg, transport, dns.rcode.NOERROR, [])  # RFC 4074
        records = [
            dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, format_ip(a))
            for a in self._pick(addrs, rng)
        ]
        return self._render(msg, transport, dns.rcode.NOERROR, records)

    def _reverse(self, msg: dns.message.Message, transport: Transport) -> bytes | None:
        labels = msg.question[0].name.relativize(REVERSE_ZONE).labels
        if len(labels) != 4 or not all(_is_octet(lb) for lb in labels):
            return None
        addr = int.from_bytes(bytes(int(lb) for lb in reversed(labels)), "big")
        hostname = self._names.lookup_addr(addr)
        if hostname is None:
            return None
        try:
            target = dns.name.from_text(hostname)
        except _PARSE_ERRORS:
            return None  # a peer registered a name we cannot render; let upstream try
        ptr = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.PTR, target.to_text())
        return self._render(msg, transport, dns.rcode.NOERROR, [ptr])

    def _forward(self, query: bytes, msg: dns.message.Message, transport: Transport) -> Forward:
        question = msg.question[0]
        name_wire = question.name.to_wire()
        assert name_wire is not None
        wire = name_wire + struct.pack("!HH", question.rdtype, question.rdclass)
        return Forward(
            query=query,
            client_id=msg.id,
            question=wire,
            max_size=self._max_size(msg, transport),
            servfail=self._render(msg, transport, dns.rcode.SERVFAIL, [], authoritative=False),
        )

    def _may_recurse(self, client: str) -> bool:
        if self.config.open_recursion:
            return True
        try:
            addr = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(addr in net for net in self._allowed)

    def _max_size(self, msg: dns.message.Message, transport: Transport) -> int:
        if transport == "tcp":
            return MAX_TCP_SIZE
        return udp_limit(msg.payload if msg.edns >= 0 else None)

    def _render(
        self,
        msg: dns.message.Message,
        transport: Transport,
        rcode: dns.rcode.Rcode,
        records: Sequence[dns.rdata.Rdata],
        *,
        authoritative: bool = True,
        ra: bool = True,
    ) -> bytes:
        """Go makeResponse: answers trimmed to fit a UDP client, TC set when trimmed."""
        response = dns.message.Message(id=msg.id)
        response.flags = dns.flags.QR | (msg.flags & dns.flags.RD)
        if authoritative and rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            response.flags |= dns.flags.AA
        if ra:
            response.flags |= dns.flags.RA
        response.question = list(msg.question)
        if msg.edns >= 0:
            response.use_edns(0, 0, EDNS_PAYLOAD)
        response.set_rcode(rcode)  # after use_edns: an extended rcode lives in the OPT
        wire = self._with_answers(response, msg, records, len(records))
        limit = self._max_size(msg, transport)
        if len(records) <= 1 or len(wire) <= limit:
            return wire
        lo, hi = 0, len(records) - 1  # the most records that fit lies in [lo, hi]
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(self._with_answers(response, msg, records, mid)) <= limit:
                lo = mid
            else:
                hi = mid - 1
        response.flags |= dns.flags.TC
        return self._with_answers(response, msg, records, lo)

    def _with_answers(
        self,
        response: dns.message.Message,
        msg: dns.message.Message,
        records: Sequence[dns.rdata.Rdata],
        count: int,
    ) -> bytes:
        question = msg.question[0]
        response.answer = []
        if count:
            rrset = dns.rrset.from_rdata_list(question.name, self.config.ttl, records[:count])
            response.answer.append(rrset)
        return response.to_wire(max_size=MAX_TCP_SIZE, want_shuffle=False)


def _is_octet(label: bytes) -> bool:
    return label.isdigit() and len(label) <= 3 and int(label) <= 255


def networks(cidrs: Iterable[str]) -> tuple[str, ...]:
    """Validate CIDR texts for ResolverConfig.allowed_networks (ValueError if bad)."""
    return tuple(str(ipaddress.ip_network(c, strict=False)) for c in cidrs)
