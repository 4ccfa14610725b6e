"""Forwarding state machine and resolv.conf handling."""

from __future__ import annotations

import random

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from weavenet.core.dns.resolvconf import ResolvConfWatcher, parse_resolv_conf
from weavenet.core.dns.resolver import Forward, Resolver, ResolverConfig
from weavenet.core.dns.upstream import ClientReply, SendQuery, Upstream

S1, S2 = ("127.0.0.2", 53), ("127.0.0.3", 53)


class NoNames:
    def lookup_name_tuple(self, lower_fqdn: str) -> tuple[int, ...]:
        return ()

    def lookup_addr(self, addr: int) -> str | None:
        return None


def forward(name: str = "example.com.", **query: object) -> tuple[dns.message.Message, Forward]:
    q = dns.message.make_query(name, "A", **query)  # type: ignore[arg-type]
    out = Resolver(ResolverConfig(open_recursion=True), NoNames()).answer(
        q.to_wire(), "10.32.0.9", "udp", 0.0, random.Random(1)
    )
    assert isinstance(out, Forward)
    return q, out


def upstream_answer(sent: SendQuery, *addrs: str, tc: bool = False, pad: int = 0) -> bytes:
    query = dns.message.from_wire(sent.data)
    reply = dns.message.make_response(query)
    for a in addrs:
        reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", a))
    if tc:
        reply.flags |= dns.flags.TC
    for i in range(pad):
        reply.answer.append(dns.rrset.from_text(f"pad{i}.example.com.", 60, "IN", "A", "192.0.2.1"))
    return reply.to_wire()


def test_first_server_answers() -> None:
    q, fwd = forward()
    up, rng = Upstream(timeout=5.0), random.Random(3)
    xid = up.start(fwd, (S1, S2), False, 100.0, rng)
    [send] = up.take_effects()
    assert isinstance(send, SendQuery) and send.server == S1 and not send.tcp
    assert send.data[2:] == fwd.query[2:]
    up.on_reply(xid, upstream_answer(send, "192.0.2.10"), 100.1, rng)
    [reply] = up.take_effects()
    assert isinstance(reply, ClientReply) and reply.xid == xid
    answer = dns.message.from_wire(reply.data)
    assert answer.id == q.id and answer.answer[0][0].address == "192.0.2.10"
    assert up.pending() == 0 and up.next_wakeup() == float("inf")


def test_silent_first_server_fails_over_to_the_second() -> None:
    _, fwd = forward()
    up, rng = Upstream(timeout=5.0), random.Random(3)
    xid = up.start(fwd, (S1, S2), False, 100.0, rng)
    up.take_effects()
    assert up.next_wakeup() == 105.0
    up.tick(104.9, rng)
    assert up.take_effects() == []
    up.tick(105.0, rng)
    [send] = up.take_effects()
    assert isinstance(send, SendQuery) and send.server == S2
    up.on_reply(xid, upstream_answer(send, "192.0.2.20"), 106.0, rng)
    [reply] = up.take_effects()
    assert isinstance(reply, ClientReply)


def test_all_silent_gives_servfail() -> None:
    _, fwd = forward()
    up, rng = Upstream(timeout=2.0), random.Random(3)
    up.start(fwd, (S1, S2), False, 0.0, rng)
    up.tick(2.0, rng)
    up.tick(4.0, rng)
    effects = up.take_effects()
    assert isinstance(effects[-1], ClientReply) and effects[-1].data == fwd.servfail
    assert dns.message.from_wire(fwd.servfail).rcode() == dns.rcode.SERVFAIL
    assert up.failures == 1


def test_no_servers_is_an_immediate_servfail() -> None:
    _, fwd = forward()
    up = Upstream()
    up.start(fwd, (), False, 0.0, random.Random())
    assert up.take_effects() == [ClientReply(1, fwd.servfail)]


def test_errors_move_to_the_next_server() -> None:
    _, fwd = forward()
    up, rng = Upstream(), random.Random(3)
    xid = up.start(fwd, (S1, S2), False, 0.0, rng)
    up.take_effects()
    up.on_error(xid, 0.1, rng)
    [send] = up.take_effects()
    assert isinstance(send, SendQuery) and send.server == S2


def test_replies_with_a_wrong_id_or_question_are_ignored() -> None:
    _, fwd = forward()
    up, rng = Upstream(), random.Random(3)
    xid = up.start(fwd, (S1,), False, 0.0, rng)
    [send] = up.take_effects()
    good = upstream_answer(send, "192.0.2.1")
    wrong_id = bytes((good[0] ^ 1,)) + good[1:]
    other_q = upstream_answer(
        SendQuery(
            xid, S1, send.data[:2] + dns.message.make_query("evil.com.", "A").to_wire()[2:], False
        )
    )
    for bad in (wrong_id, other_q, good[:5], send.data):
        up.on_reply(xid, bad, 0.1, rng)
        assert up.take_effects() == []
    up.on_reply(xid, good, 0.2, rng)
    assert isinstance(up.take_effects()[0], ClientReply)


def test_truncated_udp_answer_is_asked_again_over_tcp() -> None:
    _, fwd = forward()
    up, rng = Upstream(), random.Random(3)
    xid = up.start(fwd, (S1, S2), False, 0.0, rng)
    [send] = up.take_effects()
    up.on_reply(xid, upstream_answer(send, tc=True), 0.1, rng)
    [again] = up.take_effects()
    assert isinstance(again, SendQuery) and again.tcp and again.server == S1


def test_tcp_clients_are_forwarded_over_tcp() -> None:
    _, fwd = forward()
    up = Upstream()
    up.start(fwd, (S1,), True, 0.0, random.Random())
    [send] = up.take_effects()
    assert isinstance(send, SendQuery) and send.tcp


def test_an_upstream_answer_too_big_for_the_udp_client_is_cut_to_tc() -> None:
    q, fwd = forward()
    up, rng = Upstream(), random.Random(3)
    xid = up.start(fwd, (S1,), False, 0.0, rng)
    [send] = up.take_effects()
    up.on_reply(xid, upstream_answer(send, "192.0.2.1", pad=60), 0.1, rng)
    [reply] = up.take_effects()
    assert isinstance(reply, ClientReply) and len(reply.data) <= 512
    msg = dns.message.from_wire(reply.data)
    assert msg.flags & dns.flags.TC and msg.id == q.id and msg.question == q.question


def test_cancel_forgets_the_exchange() -> None:
    _, fwd = forward()
    up, rng = Upstream(), random.Random()
    xid = up.start(fwd, (S1,), True, 0.0, rng)
    up.take_effects()
    up.cancel(xid)
    up.tick(100.0, rng)
    assert up.take_effects() == [] and up.pending() == 0


RESOLV = """\
# generated
nameserver 192.0.2.53
nameserver 172.17.0.1   # our own listen address
nameserver 2001:db8::1
nameserver not-an-ip
nameserver 192.0.2.53
search Example.com corp.example.
options ndots:3 timeout:2 attempts:9 rotate
"""


def test_parse_resolv_conf() -> None:
    conf = parse_resolv_conf(RESOLV, exclude=("172.17.0.1",))
    assert conf.nameservers == ("192.0.2.53", "2001:db8::1")
    assert conf.search == ("Example.com.", "corp.example.")
    assert (conf.ndots, conf.timeout, conf.attempts) == (3, 2.0, 5)


def test_empty_resolv_conf_has_defaults() -> None:
    conf = parse_resolv_conf("")
    assert conf.nameservers == () and conf.ndots == 1 and conf.timeout == 5.0


def test_watcher_stats_at_most_every_five_seconds_and_rereads_on_mtime_change() -> None:
    w = ResolvConfWatcher(exclude=("172.17.0.1",))
    assert w.stat_due(0.0)
    assert w.on_stat(10.0, now=0.0)
    w.on_text(RESOLV, 10.0)
    assert w.config.nameservers == ("192.0.2.53", "2001:db8::1")
    assert not w.stat_due(4.9) and w.stat_due(5.0)
    assert not w.on_stat(10.0, now=5.0)  # unchanged
    assert w.on_stat(11.0, now=10.0)
    assert not w.on_stat(None, now=15.0)  # file gone: keep what we have
    assert w.config.nameservers == ("192.0.2.53", "2001:db8::1")


def test_beyond_max_pending_exchanges_fail_at_once() -> None:
    _, fwd = forward()
    up, rng = Upstream(max_pending=2), random.Random()
    up.start(fwd, (S1,), False, 0.0, rng)
    up.start(fwd, (S1,), False, 0.0, rng)
    assert len(up.take_effects()) == 2
    third = up.start(fwd, (S1,), False, 0.0, rng)
    assert up.take_effects() == [ClientReply(third, fwd.servfail)]
    assert up.overflows == 1 and up.pending() == 2
