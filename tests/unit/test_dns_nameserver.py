"""The nameserver gossip channel: Go receiveGossip rules, registration, timers."""

from __future__ import annotations

import pytest

from weavenet.core.dns.codec import DnsGossipData, DnsGossipError, encode_gossip
from weavenet.core.dns.entries import TOMBSTONE_TIMEOUT, Entry
from weavenet.core.dns.nameserver import ClockSkewError, Nameserver
from weavenet.core.errors import RemoteProtocolError

US = 0x0A0000000001
THEM = 0x0B0000000002
STRANGER = 0x0C0000000003
NOW = 1_600_000_000.0
IP1, IP2 = 0x0A200001, 0x0A200002


class Peers:
    def __init__(self, *names: int) -> None:
        self.names = set(names)

    def known_peers(self) -> dict[int, str]:
        return {n: f"peer{n}" for n in self.names}


class Broadcasts:
    def __init__(self) -> None:
        self.sent: list[DnsGossipData] = []

    def gossip_broadcast(self, update: DnsGossipData, now: float) -> None:
        self.sent.append(update)

    def entries(self) -> list[Entry]:
        return [e for data in self.sent for e in data.entries]


def make() -> tuple[Nameserver, Broadcasts]:
    ns = Nameserver(US, "weave.local", Peers(US, THEM))
    out = Broadcasts()
    ns.attach_gossip(out)
    return ns, out


def payload(*entries: Entry, ts: float = NOW) -> bytes:
    return encode_gossip(int(ts), entries)


def test_domain_gets_its_trailing_dot() -> None:
    assert make()[0].domain == "weave.local."


def test_add_entry_registers_and_broadcasts() -> None:
    ns, out = make()
    entry = ns.add_entry("web.weave.local", "c1", IP1, NOW)
    assert entry == Entry("c1", US, IP1, "web.weave.local.")
    assert ns.lookup_name("WEB.weave.local.") == [IP1]
    assert out.entries() == [entry]
    assert out.sent[0].timestamp == int(NOW)


def test_add_entry_outside_the_domain_is_ignored() -> None:
    ns, out = make()
    assert ns.add_entry("web.example.com.", "c1", IP1, NOW) is None
    assert ns.entries() == [] and out.sent == []


def test_delete_with_wildcards_tombstones_only_matching_own_entries() -> None:
    ns, out = make()
    ns.add_entry("web.weave.local.", "c1", IP1, NOW)
    ns.add_entry("web.weave.local.", "c2", IP2, NOW)
    ns.add_entry("db.weave.local.", "c1", IP2, NOW)
    ns.on_gossip(payload(Entry("c1", THEM, IP1, "web.weave.local.")), NOW)
    out.sent.clear()
    done = ns.delete_entries(container="c1", hostname="web.weave.local", now=NOW + 1)
    assert [(e.container_id, e.origin, e.tombstone) for e in done] == [("c1", US, int(NOW) + 1)]
    assert out.entries() == done
    assert sorted(ns.lookup_name("web.weave.local.")) == [IP1, IP2]  # THEM's c1 stays
    assert len(ns.delete_entries(now=NOW + 2)) == 2  # all wildcards: the rest of ours


def test_delete_by_address() -> None:
    ns, _ = make()
    ns.add_entry("web.weave.local.", "c1", IP1, NOW)
    ns.add_entry("web.weave.local.", "c2", IP2, NOW)
    ns.delete_entries(addr=IP2, now=NOW)
    assert ns.lookup_name("web.weave.local.") == [IP1]
    assert ns.lookup_addr(IP2) is None and ns.lookup_addr(IP1) == "web.weave.local."


def test_metrics_count_live_entries_of_our_origin_only() -> None:
    ns, _ = make()
    ns.add_entry("a.weave.local.", "c1", IP1, NOW)
    ns.add_entry("b.weave.local.", "c2", IP2, NOW)
    ns.delete_entries(container="c2", now=NOW)
    ns.on_gossip(payload(Entry("c9", THEM, IP1, "x.weave.local.")), NOW)
    assert ns.local_entry_count() == 1
    assert len(ns.entries()) == 3


@pytest.mark.parametrize("skew", [901, -901, 5000])
def test_clock_skew_beyond_15_minutes_is_refused(skew: int) -> None:
    ns, _ = make()
    msg = payload(Entry("c", THEM, IP1, "x.weave.local."), ts=NOW + skew)
    with pytest.raises(ClockSkewError) as info:
        ns.on_gossip(msg, NOW)
    assert str(info.value) == f"host clock skew of {skew}s exceeds 900s limit"
    assert isinstance(info.value, RemoteProtocolError)
    assert ns.entries() == []


def test_clock_skew_of_exactly_the_limit_is_accepted() -> None:
    ns, _ = make()
    assert ns.on_gossip(payload(Entry("c", THEM, IP1, "x.weave.local."), ts=NOW - 900), NOW)


def test_entries_of_unknown_origins_are_dropped() -> None:
    ns, _ = make()
    known = Entry("c", THEM, IP1, "x.weave.local.")
    new = ns.on_gossip(payload(known, Entry("c", STRANGER, IP2, "y.weave.local.")), NOW)
    assert new is not None and new.entries == (known,)
    assert ns.lookup_name("y.weave.local.") == []


def test_on_gossip_returns_only_what_is_new() -> None:
    ns, _ = make()
    e1 = Entry("c", THEM, IP1, "x.weave.local.", 1)
    assert ns.on_gossip(payload(e1), NOW) is not None
    assert ns.on_gossip(payload(e1), NOW) is None
    e2 = Entry("d", THEM, IP2, "y.weave.local.")
    new = ns.on_gossip(payload(e1, e2), NOW)
    assert new is not None and new.entries == (e2,) and new.timestamp == int(NOW)


def test_on_gossip_broadcast_relays_the_filtered_data_even_if_not_new() -> None:
    ns, _ = make()
    e1 = Entry("c", THEM, IP1, "x.weave.local.", 1)
    stranger = Entry("c", STRANGER, IP1, "x.weave.local.", 1)
    ns.on_gossip(payload(e1), NOW)
    relay = ns.on_gossip_broadcast(THEM, payload(e1, stranger, ts=NOW - 3), NOW)
    assert relay is not None and relay.entries == (e1,) and relay.timestamp == int(NOW) - 3


def test_entry_claiming_our_origin_with_a_newer_version_is_overridden_by_ours() -> None:
    ns, out = make()
    ours = ns.add_entry("web.weave.local.", "c1", IP1, NOW)
    assert ours is not None
    out.sent.clear()
    forged = Entry("c1", US, IP1, "web.weave.local.", 7, 12345)
    relay = ns.on_gossip_broadcast(THEM, payload(forged), NOW)
    fixed = Entry("c1", US, IP1, "web.weave.local.", 8, 0)
    assert out.entries() == [fixed]
    assert relay is not None and relay.entries == (fixed,)
    assert ns.lookup_name("web.weave.local.") == [IP1]


def test_entry_claiming_our_origin_with_equal_version_other_tombstone_is_overridden() -> None:
    ns, out = make()
    ns.add_entry("web.weave.local.", "c1", IP1, NOW)
    out.sent.clear()
    ns.on_gossip(payload(Entry("c1", US, IP1, "web.weave.local.", 0, 99)), NOW)
    assert out.entries() == [Entry("c1", US, IP1, "web.weave.local.", 1, 0)]


def test_unknown_live_entry_claiming_our_origin_is_tombstoned() -> None:
    ns, out = make()
    ghost = Entry("old", US, IP2, "ghost.weave.local.", 4, 0)
    ns.on_gossip(payload(ghost), NOW)
    assert out.entries() == [Entry("old", US, IP2, "ghost.weave.local.", 5, int(NOW))]
    assert ns.lookup_name("ghost.weave.local.") == []


def test_older_claims_on_our_entries_change_nothing() -> None:
    ns, out = make()
    ns.add_entry("web.weave.local.", "c1", IP1, NOW)
    ns.delete_entries(now=NOW)
    ns.add_entry("web.weave.local.", "c1", IP1, NOW)  # version 2, live
    out.sent.clear()
    assert ns.on_gossip(payload(Entry("c1", US, IP1, "web.weave.local.", 1, 5)), NOW) is None
    assert out.sent == []


def test_unicasts_are_ignored() -> None:
    ns, _ = make()
    assert ns.on_gossip_unicast(THEM, b"anything", NOW) is None


def test_periodic_gossip_is_everything_including_tombstones() -> None:
    ns, _ = make()
    assert ns.gossip(NOW) is None
    ns.add_entry("a.weave.local.", "c1", IP1, NOW)
    ns.add_entry("b.weave.local.", "c2", IP2, NOW)
    ns.delete_entries(container="c2", now=NOW)
    data = ns.gossip(NOW + 3)
    assert data is not None and data.timestamp == int(NOW) + 3
    assert [(e.hostname, e.tombstone) for e in data.entries] == [
        ("a.weave.local.", 0),
        ("b.weave.local.", int(NOW)),
    ]


def test_peer_gone_removes_its_entries_and_they_may_come_back() -> None:
    ns, _ = make()
    theirs = Entry("c", THEM, IP1, "x.weave.local.", 2)
    ns.on_gossip(payload(theirs), NOW)
    ns.peer_gone(THEM, NOW)
    assert ns.lookup_name("x.weave.local.") == []
    assert ns.on_gossip(payload(theirs), NOW) is not None
    assert ns.lookup_name("x.weave.local.") == [IP1]


def test_tombstone_expiry_through_tick_and_next_wakeup() -> None:
    ns, _ = make()
    assert ns.next_wakeup() == float("inf")
    ns.add_entry("a.weave.local.", "c1", IP1, NOW)
    ns.delete_entries(now=NOW)
    due = ns.next_wakeup()
    assert due == NOW + TOMBSTONE_TIMEOUT + 1
    ns.tick(due - 1)
    assert len(ns.entries()) == 1
    ns.tick(due)
    assert ns.entries() == [] and ns.next_wakeup() == float("inf")


def test_malformed_gossip_raises_our_protocol_error() -> None:
    ns, _ = make()
    with pytest.raises(DnsGossipError):
        ns.on_gossip(b"\x05garbage", NOW)
    with pytest.raises(DnsGossipError):
        ns.on_gossip_broadcast(THEM, b"", NOW)


def test_a_monotonic_router_clock_is_turned_into_unix_time_for_the_wire() -> None:
    offset = NOW - 50.0  # the router's now is 50 s since boot
    ns = Nameserver(US, "weave.local.", Peers(US, THEM), wall_offset=lambda: offset)
    out = Broadcasts()
    ns.attach_gossip(out)
    ns.add_entry("web.weave.local.", "c1", IP1, 50.0)
    assert out.sent[0].timestamp == int(NOW)
    [dead] = ns.delete_entries(now=60.0)
    assert dead.tombstone == int(NOW) + 10
    assert ns.next_wakeup() == 60.0 + TOMBSTONE_TIMEOUT + 1
    assert ns.on_gossip(payload(Entry("c", THEM, IP2, "x.weave.local.")), 50.0) is not None
    data = ns.gossip(70.0)
    assert data is not None and data.timestamp == int(NOW) + 20
