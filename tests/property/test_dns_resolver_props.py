"""The DNS parser and resolver fed random bytes, and the fast path held to the library path."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import dns.edns
import dns.flags
import dns.message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weavenet.core.dns.codec import encode_gossip
from weavenet.core.dns.entries import Entry
from weavenet.core.dns.fastpath import FastPath
from weavenet.core.dns.library_path import DnsFormatError, domain_key, parse_query
from weavenet.core.dns.nameserver import Nameserver, fqdn
from weavenet.core.dns.resolver import Forward, Resolver, ResolverConfig, lookup_key

US = 0x0A0000000001


class Peers:
    def known_peers(self) -> dict[int, str]:
        return {US: "us"}


def make_ns() -> Nameserver:
    ns = Nameserver(US, "weave.local.", Peers())
    for i in range(3):
        ns.add_entry("web.weave.local.", f"w{i}", 0x0A200001 + (i << 18), 0)
    for i in range(60):
        ns.add_entry("big.weave.local.", f"b{i}", 0x0A300000 + i, 0)
    ns.add_entry("Mixed-Case_1.sub.weave.local.", "m", 0x0A200009, 0)
    return ns


NS = make_ns()
RESOLVERS = [
    Resolver(ResolverConfig(all_answers=mode, ttl=ttl, allowed_networks=("10.0.0.0/8",)), NS)
    for mode in (False, True)
    for ttl in (1, 30)
]

labels = st.sampled_from(
    ["web", "WEB", "Web", "big", "db", "mixed-case_1", "sub", "x", "weave", "local"]
)
suffixes = st.sampled_from(
    ["weave.local.", "WEAVE.Local.", "example.com.", "", "local.", "in-addr.arpa."]
)


@st.composite
def names(draw: st.DrawFn) -> str:
    head = draw(st.lists(labels, min_size=0, max_size=3))
    suffix = draw(suffixes)
    text = ".".join(head) + ("." if head else "") + suffix
    return text or "."


@st.composite
def queries(draw: st.DrawFn) -> bytes:
    name = draw(names())
    rdtype = draw(st.sampled_from(["A", "A", "A", "AAAA", "PTR", "MX"]))
    edns = draw(st.sampled_from([-1, 0, 0, 1]))
    payload = draw(st.sampled_from([0, 100, 512, 700, 1232, 4096, 65535]))
    options = draw(st.sampled_from([[], [dns.edns.CookieOption(b"abcdefgh", b"")]]))
    ednsflags = draw(st.sampled_from([0, dns.flags.DO, 0x7FFF]))
    q = dns.message.make_query(
        name,
        rdtype,
        use_edns=edns,
        payload=payload,
        options=options if edns >= 0 else None,
        ednsflags=ednsflags if edns >= 0 else 0,
    )
    q.id = draw(st.integers(0, 0xFFFF))
    if draw(st.booleans()):
        q.flags &= ~dns.flags.RD
    return q.to_wire()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(queries()))
    for _ in range(draw(st.integers(0, 3))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return bytes(raw)


def both(r: Resolver, q: bytes, transport: str, seed: int) -> tuple[object, object]:
    fast = r.answer(q, "10.32.0.9", transport, 0.0, random.Random(seed))  # type: ignore[arg-type]
    slow = r.slow_answer(q, "10.32.0.9", transport, random.Random(seed))  # type: ignore[arg-type]
    return fast, slow


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(queries(), st.sampled_from(RESOLVERS), st.sampled_from(["udp", "tcp"]), st.integers(0, 99))
def test_fast_path_answers_equal_the_library_path(
    q: bytes, r: Resolver, transport: str, seed: int
) -> None:
    fast, slow = both(r, q, transport, seed)
    assert fast == slow


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from(RESOLVERS), st.sampled_from(["udp", "tcp"]), st.integers(0, 99))
def test_fast_path_equals_library_path_on_damaged_queries(
    q: bytes, r: Resolver, transport: str, seed: int
) -> None:
    fast, slow = both(r, q, transport, seed)
    assert fast == slow


def test_the_fast_path_takes_the_common_queries() -> None:
    fast = FastPath("weave.local.", 1, NS.lookup_name_tuple, lambda a, rng: [a[0]])
    rng = random.Random()
    for name in ("web.weave.local.", "WEB.weave.local.", "web.", "nothere.weave.local."):
        for edns in (-1, 0):
            assert fast.answer(
                dns.message.make_query(name, "A", use_edns=edns).to_wire(), True, rng
            )
    for name, rdtype in [("web.weave.local.", "AAAA"), ("example.com.", "A"), (".", "A")]:
        assert fast.answer(dns.message.make_query(name, rdtype).to_wire(), True, rng) is None


def _key_or_error(compute: Callable[[], str]) -> str | type[Exception]:
    try:
        return compute()
    except Exception as exc:  # the kind of error is what must agree
        return type(exc)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text("aZ09_-. \\\xe9", max_size=70), min_size=1, max_size=6), st.booleans())
def test_the_domain_key_without_the_library_is_the_library_s(
    labels: list[str], dotted: bool
) -> None:
    domain = ".".join(labels) + ("." if dotted else "")
    library = _key_or_error(lambda: domain_key(fqdn(domain)))
    assert _key_or_error(lambda: lookup_key(domain)) == library


@settings(max_examples=1000)
@given(st.binary(max_size=600))
def test_the_parser_raises_only_our_error(data: bytes) -> None:
    with contextlib.suppress(DnsFormatError):
        parse_query(data)


@settings(max_examples=1000)
@given(st.one_of(st.binary(max_size=600), mutated()), st.sampled_from(["udp", "tcp"]))
def test_random_bytes_get_formerr_an_answer_or_nothing(data: bytes, transport: str) -> None:
    out = RESOLVERS[0].answer(data, "10.32.0.9", transport, 0.0, random.Random(1))  # type: ignore[arg-type]
    if out is None:
        assert len(data) < 12 or data[2] & 0x80
    elif isinstance(out, bytes):
        assert out[:2] == data[:2] and out[2] & 0x80  # a response to this query
    else:
        assert isinstance(out, Forward) and out.query == data


@settings(max_examples=300)
@given(st.text(max_size=300), st.sampled_from(["udp", "tcp"]))
def test_any_hostname_a_peer_gossips_is_answered_or_forwarded(name: str, transport: str) -> None:
    ns = Nameserver(0x0B0000000002, "weave.local.", Peers())  # US is a peer of this one
    ns.on_gossip(encode_gossip(0, [Entry("c", US, 0x0A200007, name)]), 0.0)
    assert ns.lookup_addr(0x0A200007) == name
    r = Resolver(ResolverConfig(), ns)
    for q in (
        dns.message.make_query("7.0.32.10.in-addr.arpa.", "PTR"),
        dns.message.make_query("web.weave.local.", "A"),
    ):
        out = r.answer(q.to_wire(), "10.32.0.9", transport, 0.0, random.Random(1))  # type: ignore[arg-type]
        assert isinstance(out, bytes | Forward)
