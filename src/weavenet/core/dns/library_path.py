"""The resolver's library path: every query the fast path does not take, parsed and
answered with dnspython (Go nameserver/dns.go semantics, weave-surface.md §5).

The resolver imports this module on the first such query, so that a router whose
clients only ever send the common A query never loads dnspython (~30 ms of start-up).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from weavenet.core.dns.entries import format_ip
from weavenet.core.dns.fastpath import EDNS_PAYLOAD, HEADER_LEN, Picker, udp_limit
from weavenet.core.dns.query import MAX_TCP_SIZE, Forward, NameLookup, Transport
from weavenet.core.errors import RemoteProtocolError

REVERSE_ZONE = dns.name.from_text("in-addr.arpa.")
RCODE_FORMERR = 1
RCODE_NOTIMP = 4

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


def domain_key(domain: str) -> str:
    """The lower-case text of a domain as dnspython renders it (escapes included);
    ValueError-family dnspython errors for a domain that is no DNS name."""
    return dns.name.from_text(domain).to_text().lower()


class LibraryPath:
    """Answers any query (or returns a Forward decision / None), through dnspython."""

    def __init__(
        self,
        domain: str,
        ttl: int,
        names: NameLookup,
        pick: Picker,
        may_recurse: Callable[[str], bool],
    ) -> None:
        self._domain = dns.name.from_text(domain)
        self._domain_key = self._domain.to_text().lower()
        self._ttl = ttl
        self._names = names
        self._pick = pick
        self._may_recurse = may_recurse

    def answer(
        self, query: bytes, client: str, transport: Transport, rng: random.Random
    ) -> bytes | Forward | None:
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
            rrset = dns.rrset.from_rdata_list(question.name, self._ttl, records[:count])
            response.answer.append(rrset)
        return response.to_wire(max_size=MAX_TCP_SIZE, want_shuffle=False)


def _is_octet(label: bytes) -> bool:
    return label.isdigit() and len(label) <= 3 and int(label) <= 255
