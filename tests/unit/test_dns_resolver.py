"""Answers of the resolver (weave-surface.md §5, issue 7), through both of its paths."""

from __future__ import annotations

import random
from collections import Counter

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from weavenet.core.dns.nameserver import Nameserver
from weavenet.core.dns.resolver import Forward, Resolver, ResolverConfig

US = 0x0A0000000001
WEB = [0x0A200001, 0x0A240001, 0x0A280001]
CLIENT = "10.32.0.9"


class Peers:
    def known_peers(self) -> dict[int, str]:
        return {US: "us"}


def nameserver(*extra: tuple[str, int]) -> Nameserver:
    ns = Nameserver(US, "weave.local.", Peers())
    for i, addr in enumerate(WEB):
        ns.add_entry("web.weave.local.", f"c{i}", addr, 0)
    ns.add_entry("db.weave.local.", "db", 0x0A200005, 0)
    for name, addr in extra:
        ns.add_entry(name, f"x{addr}", addr, 0)
    return ns


def resolver(ns: Nameserver | None = None, **config: object) -> Resolver:
    cfg = ResolverConfig(allowed_networks=("10.32.0.0/12",), **config)  # type: ignore[arg-type]
    return Resolver(cfg, ns or nameserver())


def ask(
    r: Resolver,
    name: str,
    rdtype: str = "A",
    transport: str = "udp",
    client: str = CLIENT,
    seed: int = 1,
    **query: object,
) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **query)  # type: ignore[arg-type]
    out = r.answer(q.to_wire(), client, transport, 0.0, random.Random(seed))  # type: ignore[arg-type]
    assert isinstance(out, bytes), out
    reply = dns.message.from_wire(out)
    assert reply.id == q.id
    return reply


def addrs(reply: dns.message.Message) -> list[str]:
    return [rd.address for rrset in reply.answer for rd in rrset]


def test_a_answer_is_authoritative_with_the_configured_ttl() -> None:
    reply = ask(resolver(ttl=7), "db.weave.local.")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA and reply.flags & dns.flags.RA
    assert addrs(reply) == ["10.32.0.5"]
    assert reply.answer[0].ttl == 7


def test_default_mode_answers_one_address_spread_uniformly() -> None:
    r = resolver()
    seen = Counter(addrs(ask(r, "web.weave.local.", seed=s))[0] for s in range(3000))
    assert set(seen) == {"10.32.0.1", "10.36.0.1", "10.40.0.1"}
    assert all(900 <= n <= 1100 for n in seen.values()), seen


def test_all_answers_mode_returns_every_address_in_varying_order() -> None:
    r = resolver(all_answers=True)
    orders = {tuple(addrs(ask(r, "web.weave.local.", seed=s))) for s in range(200)}
    assert all(sorted(o) == ["10.32.0.1", "10.36.0.1", "10.40.0.1"] for o in orders)
    assert len(orders) == 6  # all permutations occur


def test_lookup_is_case_insensitive_and_echoes_the_query_name() -> None:
    reply = ask(resolver(), "DB.Weave.LOCAL.")
    assert addrs(reply) == ["10.32.0.5"]
    assert reply.answer[0].name.to_text() == "DB.Weave.LOCAL."
    assert reply.question[0].name.to_text() == "DB.Weave.LOCAL."


def test_unqualified_single_label_names_resolve_in_the_domain() -> None:
    reply = ask(resolver(), "db.")
    assert addrs(reply) == ["10.32.0.5"]
    assert ask(resolver(), "nothere.").rcode() == dns.rcode.NXDOMAIN


def test_unknown_name_in_the_domain_is_nxdomain() -> None:
    reply = ask(resolver(), "nope.weave.local.")
    assert reply.rcode() == dns.rcode.NXDOMAIN and reply.answer == []


@pytest.mark.parametrize("rdtype", ["AAAA", "MX", "TXT", "ANY"])
def test_existing_name_other_type_is_noerror_empty(rdtype: str) -> None:
    reply = ask(resolver(), "db.weave.local.", rdtype)
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []


def test_ptr_for_a_local_address() -> None:
    reply = ask(resolver(), "5.0.32.10.IN-ADDR.ARPA.", "PTR")
    assert [rd.target.to_text() for rd in reply.answer[0]] == ["db.weave.local."]
    assert reply.flags & dns.flags.AA


def test_ptr_miss_and_foreign_names_are_forwarded() -> None:
    r = resolver()
    for name, rdtype in [("9.9.32.10.in-addr.arpa.", "PTR"), ("example.com.", "A")]:
        q = dns.message.make_query(name, rdtype)
        out = r.answer(q.to_wire(), CLIENT, "udp", 0.0, random.Random(1))
        assert isinstance(out, Forward)
        assert out.query == q.to_wire() and out.client_id == q.id and out.max_size == 512
        servfail = dns.message.from_wire(out.servfail)
        assert servfail.rcode() == dns.rcode.SERVFAIL and servfail.id == q.id


def test_recursion_is_refused_to_clients_outside_the_allowed_networks() -> None:
    reply = ask(resolver(), "example.com.", client="192.0.2.7")
    assert reply.rcode() == dns.rcode.REFUSED and not reply.flags & dns.flags.RA
    assert addrs(ask(resolver(), "db.weave.local.", client="192.0.2.7")) == ["10.32.0.5"]
    q = dns.message.make_query("example.com.", "A").to_wire()
    assert isinstance(
        resolver(open_recursion=True).answer(q, "192.0.2.7", "udp", 0, random.Random()), Forward
    )
    for host in ("127.0.0.1", "::1", "10.47.255.1"):
        assert isinstance(resolver().answer(q, host, "udp", 0, random.Random()), Forward)
    assert ask(resolver(), "example.com.", client="10.48.0.1").rcode() == dns.rcode.REFUSED


def many() -> Nameserver:
    return nameserver(*(("big.weave.local.", 0x0A300000 + i) for i in range(50)))


def test_udp_answers_that_do_not_fit_are_truncated_with_tc() -> None:
    reply = ask(resolver(many(), all_answers=True), "big.weave.local.")
    assert reply.flags & dns.flags.TC
    assert 0 < len(addrs(reply)) < 50
    assert len(reply.to_wire()) <= 512


def test_edns_buffer_size_raises_the_udp_limit() -> None:
    r = resolver(many(), all_answers=True)
    small = ask(r, "big.weave.local.")
    bigger = ask(r, "big.weave.local.", use_edns=0, payload=700)
    assert bigger.flags & dns.flags.TC
    assert len(addrs(small)) < len(addrs(bigger)) < 50
    assert len(bigger.to_wire()) <= 700
    assert bigger.edns == 0 and bigger.payload == 4096
    full = ask(r, "big.weave.local.", use_edns=0, payload=4096)
    assert len(addrs(full)) == 50 and not full.flags & dns.flags.TC


def test_tcp_gets_the_full_answer() -> None:
    reply = ask(resolver(many(), all_answers=True), "big.weave.local.", transport="tcp")
    assert len(addrs(reply)) == 50 and not reply.flags & dns.flags.TC


def test_garbage_shorter_than_a_header_gets_no_answer() -> None:
    for data in (b"", b"\x00", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00"):
        assert resolver().answer(data, CLIENT, "udp", 0, random.Random()) is None


def test_responses_are_never_answered() -> None:
    reply = dns.message.make_response(dns.message.make_query("db.weave.local.", "A"))
    assert resolver().answer(reply.to_wire(), CLIENT, "udp", 0, random.Random()) is None


@pytest.mark.parametrize(
    "data",
    [
        b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05web",  # truncated question
        b"\xab\xcd\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00",  # two questions, none there
        b"\xab\xcd\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00",  # no question
        b"\xab\xcd" + dns.message.make_query("db.weave.local.", "A").to_wire()[2:] + b"junk",
    ],
    ids=["truncated-question", "two-questions", "no-question", "trailing-junk"],
)
def test_malformed_queries_with_a_header_get_formerr(data: bytes) -> None:
    out = resolver().answer(data, CLIENT, "udp", 0, random.Random())
    assert isinstance(out, bytes)
    reply = dns.message.from_wire(out)
    assert reply.rcode() == dns.rcode.FORMERR and reply.id == int.from_bytes(data[:2], "big")


def test_other_opcodes_are_not_implemented() -> None:
    q = dns.message.make_query("db.weave.local.", "A")
    q.set_opcode(dns.opcode.NOTIFY)
    out = resolver().answer(q.to_wire(), CLIENT, "udp", 0, random.Random())
    assert isinstance(out, bytes) and dns.message.from_wire(out).rcode() == dns.rcode.NOTIMP


def test_edns_version_above_zero_gets_badvers() -> None:
    reply = ask(resolver(), "db.weave.local.", use_edns=1)
    assert reply.rcode() == dns.rcode.BADVERS


def test_a_client_cookie_is_accepted() -> None:
    cookie = dns.edns.CookieOption(b"12345678", b"")
    reply = ask(resolver(), "db.weave.local.", use_edns=0, options=[cookie])
    assert addrs(reply) == ["10.32.0.5"]
