"""The query fast path: a standard A query for a name in our domain, answered from a few
byte slices without the DNS library.

It covers what containers send all day (one question, class IN, type A, no EDNS or a
plain EDNS0 OPT with at most a client cookie) and returns None for everything else, which
then takes the library path.  Its answers are byte-identical to the library path's (a
property test compares them), so taking it never changes what a client sees.
"""

from __future__ import annotations

import random
from collections.abc import Callable

HEADER_LEN = 12
TYPE_A = b"\x00\x01\x00\x01"  # QTYPE A, QCLASS IN
ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0
OPT_HEAD = b"\x00\x00\x29"  # root owner name, TYPE OPT
COOKIE_OPTION = b"\x00\x0a\x00\x08"  # EDNS option 10 (COOKIE), 8-byte client cookie
EDNS_PAYLOAD = 4096  # what we advertise (Go udpBuffSize)
RESPONSE_OPT = OPT_HEAD + EDNS_PAYLOAD.to_bytes(2, "big") + b"\x00" * 6
A_RECORD_LEN = 16  # compressed owner (2) + type, class (4) + TTL (4) + rdlength (2) + addr (4)
MIN_UDP_SIZE = 512
MAX_NAME_LEN = 255
_LABEL_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

FLAGS_AA_RA = 0x84  # QR + AA in the first flags byte
RCODE_NOERROR_RA = b"\x80"
RCODE_NXDOMAIN_RA = b"\x83"

Lookup = Callable[[str], tuple[int, ...]]
Picker = Callable[[tuple[int, ...], random.Random], list[int]]


def udp_limit(payload: int | None) -> int:
    """Largest UDP answer a client takes: 512, or its EDNS0 buffer size (never below 512)."""
    return MIN_UDP_SIZE if payload is None else max(MIN_UDP_SIZE, payload)


def fit_count(base_len: int, record_len: int, wanted: int, limit: int) -> int:
    """How many equal-size records fit after base_len bytes within limit (at least 0)."""
    return max(0, min(wanted, (limit - base_len) // record_len))


class FastPath:
    """Answers the common query or returns None; never raises on any input."""

    def __init__(self, domain: str, ttl: int, lookup: Lookup, pick: Picker) -> None:
        self._domain = domain.lower()
        self._suffix = "." + self._domain
        self._lookup = lookup
        self._pick = pick
        self._record_head = b"\xc0\x0c" + TYPE_A + ttl.to_bytes(4, "big") + b"\x00\x04"

    def answer(self, q: bytes, udp: bool, rng: random.Random) -> bytes | None:
        n = len(q)
        if n < HEADER_LEN + 5 or q[2] & 0xF8 or q[4:10] != ONE_QUESTION:
            return None
        arcount = q[10:12]
        if arcount != b"\x00\x00" and arcount != b"\x00\x01":
            return None
        parsed = self._question(q, n)
        if parsed is None:
            return None
        key, qend = parsed
        payload: int | None = None
        if arcount == b"\x00\x01":
            payload = _plain_opt_payload(q, qend, n)
            if payload is None:
                return None
        elif qend != n:
            return None
        return self._reply(q, qend, key, payload, udp, rng)

    def _question(self, q: bytes, n: int) -> tuple[str, int] | None:
        """(lookup key, end of question) for a simple name we answer, else None."""
        labels: list[bytes] = []
        pos = HEADER_LEN
        while True:
            length = q[pos]
            if length == 0:
                break
            if length > 63:
                return None
            labels.append(q[pos + 1 : pos + 1 + length])
            pos += 1 + length
            if pos >= n:
                return None
        end = pos + 1
        if not labels or end - HEADER_LEN > MAX_NAME_LEN or q[end : end + 4] != TYPE_A:
            return None
        if b"".join(labels).translate(None, _LABEL_CHARS):
            return None  # escapes or non-ASCII: the library path renders those
        key = b".".join(labels).decode("ascii").lower() + "."
        if len(labels) == 1:
            key += self._domain  # unqualified names resolve in the domain (Weave test 230)
        elif key != self._domain and not key.endswith(self._suffix):
            return None
        return key, end + 4

    def _reply(
        self, q: bytes, qend: int, key: str, payload: int | None, udp: bool, rng: random.Random
    ) -> bytes:
        opt = RESPONSE_OPT if payload is not None else b""
        counts_tail = b"\x00\x00\x00\x01" if payload is not None else b"\x00\x00\x00\x00"
        addrs = self._lookup(key)
        first = bytes((FLAGS_AA_RA | (q[2] & 0x01),))
        if not addrs:
            return (
                q[:2]
                + first
                + RCODE_NXDOMAIN_RA
                + b"\x00\x01\x00\x00"
                + counts_tail
                + (q[HEADER_LEN:qend] + opt)
            )
        picked = self._pick(addrs, rng)
        if udp and len(picked) > 1:
            base = qend + len(opt)
            keep = fit_count(base, A_RECORD_LEN, len(picked), udp_limit(payload))
            if keep < len(picked):
                picked = picked[:keep]
                first = bytes((first[0] | 0x02,))  # TC
        head = self._record_head
        records = b"".join([head + a.to_bytes(4, "big") for a in picked])
        return b"".join(
            (
                q[:2],
                first,
                RCODE_NOERROR_RA,
                b"\x00\x01",
                len(picked).to_bytes(2, "big"),
                counts_tail,
                q[HEADER_LEN:qend],
                records,
                opt,
            )
        )


def _plain_opt_payload(q: bytes, pos: int, n: int) -> int | None:
    """The UDP payload size of an EDNS0 OPT that ends the query, when plain enough."""
    if q[pos : pos + 3] != OPT_HEAD or n < pos + 11 or q[pos + 6] != 0:  # EDNS version 0
        return None
    rdlen = q[pos + 9 : pos + 11]
    if rdlen == b"\x00\x00":
        ok = n == pos + 11
    else:
        ok = rdlen == b"\x00\x0c" and q[pos + 11 : pos + 15] == COOKIE_OPTION and n == pos + 23
    return int.from_bytes(q[pos + 3 : pos + 5], "big") if ok else None
