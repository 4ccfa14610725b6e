"""Topology table: wire vectors (A.2, A.5), merge rules, local entry, GC, short IDs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.mesh.peer import encode_peers
from weavenet.core.mesh.peers import ConnectionSummary, Peer, Peers, TopologyError
from weavenet.core.mesh.topology_gossip import TopologyGossipData
from weavenet.core.peername import format_peer_name, parse_peer_name

A = parse_peer_name("aa:bb:cc:dd:ee:ff")
B = parse_peer_name("02:00:00:00:00:01")
C = parse_peer_name("02:00:00:00:00:0c")
D = parse_peer_name("02:00:00:00:00:0d")
US = parse_peer_name("0e:00:00:00:00:99")

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "weave28"

# Appendix A.5: hostA, UID 0x0102030405060708, Version 7, ShortID 0xabc, one connection.
A5 = bytes.fromhex(
    "62ff830301010b7065657253756d6d61727901ff8400010601084e616d6542797465010a0001084e69636b"
    "4e616d65010c000103554944010600010756657273696f6e010600010753686f72744944010600010a4861"
    "7353686f727449440102000000"
    "24ff840106aabbccddeeff0105686f73744101f80102030405060708010701fe0abc010100"
    "0dff87020102ff880001ff860000"
    "5bff8503010111636f6e6e656374696f6e53756d6d61727901ff8600010401084e616d6542797465010a00"
    "010d52656d6f746554435041646472010c0001084f7574626f756e64010200010b45737461626c69736865"
    "640102000000"
    "20ff8800010106020000000001010d31302e302e302e323a363738330101010100"
)

# Appendix A.2: the 313-byte topology payload of A's first gossip to B.
A2 = bytes.fromhex(
    "62ff830301010b7065657253756d6d61727901ff8400010601084e616d6542797465010a0001084e69636b"
    "4e616d65010c000103554944010600010756657273696f6e010600010753686f72744944010600010a4861"
    "7353686f72744944010200000022ff8401060200000000010105686f73744201f846726ed332cdf7be02fe"
    "0c920101000dff87020102ff880001ff8600005bff8503010111636f6e6e656374696f6e53756d6d617279"
    "01ff8600010401084e616d6542797465010a00010d52656d6f746554435041646472010c0001084f757462"
    "6f756e64010200010b45737461626c6973686564010200000004ff88000022ff840106aabbccddeeff0105"
    "686f73744101f80838194f551a06720102010f01010020ff8800010106020000000001010f3132372e302e"
    "302e313a3532333438020100"
)


def make_peer(
    name: int,
    uid: int = 1,
    version: int = 1,
    short_id: int = 1,
    has_short_id: bool = True,
    nickname: str = "",
    conns: dict[int, bool] | None = None,
) -> Peer:
    peer = Peer(name, nickname or f"n{name:x}", uid, version, short_id, has_short_id)
    for remote, established in (conns or {}).items():
        peer.connections[remote] = ConnectionSummary(remote, "10.0.0.1:6783", True, established)
    return peer


def new_table(uid: int = 77, short_id: int = 99, seed: int = 0, name: int = US) -> Peers:
    return Peers(make_peer(name, uid=uid, version=0, short_id=short_id), random.Random(seed))


def snapshot(peers: Peers) -> list[tuple[object, ...]]:
    return [
        (
            p.name,
            p.nickname,
            p.uid,
            p.version,
            p.short_id,
            p.has_short_id,
            sorted(
                (c.remote, c.remote_tcp_addr, c.outbound, c.established)
                for c in p.connections.values()
            ),
        )
        for p in peers
    ]


# --- wire vectors -------------------------------------------------------------


def test_a5_decodes_into_peer_and_placeholder() -> None:
    peers = new_table()
    received, new = peers.apply_update(A5)
    assert received == {A} and new == {A}
    host_a = peers.get(A)
    assert host_a is not None
    assert (host_a.nickname, host_a.uid, host_a.version) == ("hostA", 0x0102030405060708, 7)
    assert (host_a.short_id, host_a.has_short_id) == (0xABC, True)
    assert host_a.connections == {B: ConnectionSummary(B, "10.0.0.2:6783", True, True)}
    assert peers.get(B) == Peer.placeholder(B)


def a5_peer() -> Peer:
    peer = Peer(A, "hostA", 0x0102030405060708, 7, 0xABC, True)
    peer.connections[B] = ConnectionSummary(B, "10.0.0.2:6783", True, True)
    return peer


def test_a5_encodes_byte_exact() -> None:
    assert encode_peers([a5_peer()], first_id=66) == A5


def test_a5_peers_encode_round_trips() -> None:
    table = new_table()
    table.apply_update(A5)
    other = new_table()
    other.apply_update(table.encode([A]))
    assert other.get(A) == a5_peer()


def test_a2_payload() -> None:
    peers = new_table()
    received, new = peers.apply_update(A2)
    assert received == new == {A, B}
    host_b = peers.get(B)
    assert host_b == Peer(B, "hostB", 5076241583369484222, 0, 3218, True)
    host_a = peers.get(A)
    assert host_a is not None
    assert (host_a.uid, host_a.version, host_a.short_id) == (592251179520099954, 2, 15)
    assert host_a.connections == {B: ConnectionSummary(B, "127.0.0.1:52348", False, True)}


def test_gossip_carries_our_entry_as_last_published() -> None:
    table = new_table()
    first = table.ourself.version
    table.add_local_connection(A, "10.0.0.5:6783", True, False)
    table.set_local_connection_established(A)
    assert table.ourself.version == first + 2  # the live entry moves at once
    fresh = new_table(name=D)
    fresh.apply_update(table.encode([US]))
    seen = fresh.get(US)
    assert seen is not None and (seen.version, seen.connections) == (first, {})
    table.publish()
    fresh.apply_update(table.encode([US]))
    seen = fresh.get(US)
    assert seen is not None and seen.version == first + 2
    assert seen.connections == {A: ConnectionSummary(A, "10.0.0.5:6783", True, True)}
    table.delete_local_connection(A)  # a later change does not alter what was published
    assert table.published.connections == seen.connections


def test_outbidding_an_old_incarnation_is_published_at_once() -> None:
    table = new_table()
    old_self = make_peer(US, uid=table.ourself.uid + 1, version=table.ourself.version + 5)
    table.apply_update(encode_peers([old_self]))
    assert table.published.version == table.ourself.version > old_self.version


def test_encode_all_round_trips_and_skips_unknown() -> None:
    table = new_table()
    table.add_local_connection(A, "10.0.0.5:6783", True, False)
    table.apply_update(encode_peers([make_peer(A, conns={US: True, C: False}), make_peer(C)]))
    table.publish()
    fresh = new_table(name=D)
    assert fresh.apply_update(table.encode()) == ({US, A, C}, {US, A, C})
    assert [p for p in snapshot(fresh) if p[0] != D] == snapshot(table)
    assert table.encode([D]) == b""
    assert table.encode([C, D]) == encode_peers([table.get(C)])  # type: ignore[list-item]


def test_peer_status_list_matches_sample_report() -> None:
    report = json.loads((SAMPLES / "h1-plain-report.json").read_text())["Router"]
    h1, h2 = parse_peer_name("a2:00:00:00:00:01"), parse_peer_name("a2:00:00:00:00:02")
    us = Peer(h1, "anc-h1", 4125422083535948985, 0, 215, True)
    peers = Peers(us, random.Random(0))
    peers.fetch_with_default(Peer(h2, "anc-h2", 6462960917018628862, 0, 1892, True))
    peers.add_local_connection(h2, "172.31.77.2:58841", False, False)
    peers.set_local_connection_established(h2)
    them = Peer(h2, "anc-h2", 6462960917018628862, 2, 1892, True)
    them.connections[h1] = ConnectionSummary(h1, "172.31.77.1:6783", True, True)
    peers.apply_update(encode_peers([them]))
    status = peers.peer_status_list()
    status[0]["Version"] = 2  # Go's count started at 0, ours at 1
    assert status == report["Peers"]


def test_peer_status_list_follows_every_change_after_a_first_call() -> None:
    peers = new_table()
    first = peers.peer_status_list()
    first[0]["Version"] = 99  # a caller's edit of its rows does not leak into the next call
    peers.fetch_with_default(make_peer(A, nickname="a"))
    peers.add_local_connection(A, "10.0.0.2:6783", True, False)
    ours = peers.peer_status_list()[0]
    assert ours["Version"] == 2 and ours["Connections"][0]["Established"] is False
    peers.set_local_connection_established(A)
    assert peers.peer_status_list()[0]["Connections"][0]["Established"] is True
    peers.apply_update(encode_peers([make_peer(A, version=3, nickname="a2", conns={US: True})]))
    rows = {row["NickName"]: row for row in peers.peer_status_list()}
    assert rows["a2"]["Connections"][0]["Established"] is True
    assert rows[peers.ourself.nickname]["Connections"][0]["NickName"] == "a2"


def test_peer_status_without_connections_is_null() -> None:
    assert new_table().peer_status_list()[0]["Connections"] is None


# --- merge rules ------------------------------------------------------------------

# (old version, old uid, old has_short_id), (new ...), applied?
MERGE_CASES = [
    ((5, 10, True), (4, 99, True), False),  # older version ignored, whatever the UID
    ((5, 10, True), (6, 1, False), True),  # newer version wins, whatever the UID
    ((5, 10, True), (5, 11, False), True),  # same version: higher UID wins
    ((5, 10, True), (5, 9, True), False),  # same version: lower UID loses
    ((5, 10, False), (5, 10, True), True),  # same version+UID: gaining a ShortID wins
    ((5, 10, True), (5, 10, True), False),  # identical: ignored
    ((5, 10, True), (5, 10, False), False),  # losing the ShortID: ignored
    ((5, 10, False), (5, 10, False), False),
]


@pytest.mark.parametrize(("old", "new", "applied"), MERGE_CASES)
def test_merge_rule(old: tuple[int, int, bool], new: tuple[int, int, bool], applied: bool) -> None:
    peers = new_table()
    old_peer = make_peer(A, uid=old[1], version=old[0], has_short_id=old[2], nickname="old")
    peers.apply_update(encode_peers([old_peer]))
    new_peer = make_peer(
        A,
        uid=new[1],
        version=new[0],
        has_short_id=new[2],
        short_id=7,
        nickname="new",
        conns={C: True},
    )
    received, changed = peers.apply_update(encode_peers([new_peer]))
    assert received == {A}
    assert changed == ({A} if applied else set())
    expected = new_peer if applied else old_peer
    assert peers.get(A) == expected


def test_placeholders_come_from_connection_lists_even_if_entry_ignored() -> None:
    peers = new_table()
    peers.apply_update(encode_peers([make_peer(A, version=5)]))
    _, new = peers.apply_update(encode_peers([make_peer(A, version=4, conns={C: True})]))
    assert new == set()
    assert peers.get(C) == Peer.placeholder(C)  # Go adds placeholders before merging


def test_placeholder_is_not_new_and_is_replaced_by_real_entry() -> None:
    peers = new_table()
    received, new = peers.apply_update(encode_peers([make_peer(A, conns={C: True})]))
    assert received == new == {A}
    assert peers.get(C) == Peer.placeholder(C)
    real_c = make_peer(C, uid=3, version=0)
    assert peers.apply_update(encode_peers([real_c])) == ({C}, {C})
    assert peers.get(C) == real_c


def test_entry_in_same_update_gets_no_placeholder() -> None:
    peers = new_table()
    update = encode_peers([make_peer(A, conns={C: True}), make_peer(C, uid=0, version=0)])
    peers.apply_update(update)
    assert peers.get(C) == make_peer(C, uid=0, version=0)


def test_entry_about_old_incarnation_of_ourself_bumps_our_version() -> None:
    peers = new_table(uid=77)
    peers.add_local_connection(A, "1.2.3.4:6783", True, False)
    assert peers.ourself.version == 2
    old_us = make_peer(US, uid=12, version=9)
    assert peers.apply_update(encode_peers([old_us])) == ({US}, {US})
    assert peers.ourself.version == 10
    assert peers.ourself.uid == 77 and A in peers.ourself.connections
    # an older stale entry no longer beats us; our own UID is always ignored
    assert peers.apply_update(encode_peers([make_peer(US, uid=12, version=3)]))[1] == set()
    assert peers.apply_update(encode_peers([make_peer(US, uid=77, version=50)]))[1] == set()
    assert peers.ourself.version == 10


def test_applying_same_update_twice_changes_nothing() -> None:
    peers = new_table()
    update = encode_peers([make_peer(A, conns={B: True}), make_peer(B, conns={A: True})])
    assert peers.apply_update(update)[1] == {A, B}
    before = snapshot(peers)
    assert peers.apply_update(update) == ({A, B}, set())
    assert snapshot(peers) == before


# --- our own entry ------------------------------------------------------------------


def test_local_connection_lifecycle_bumps_version() -> None:
    peers = new_table()
    assert peers.ourself.version == 1  # first gossip must carry Version >= 1
    peers.fetch_with_default(make_peer(A, version=0))
    peers.add_local_connection(A, "10.0.0.2:6783", True, False)
    assert peers.ourself.version == 2
    assert peers.ourself.connections[A] == ConnectionSummary(A, "10.0.0.2:6783", True, False)
    peers.set_local_connection_established(A)
    assert peers.ourself.version == 3 and peers.ourself.connections[A].established
    peers.set_local_connection_established(B)  # unknown: no-op
    peers.delete_local_connection(B)
    assert peers.ourself.version == 3
    peers.delete_local_connection(A)
    assert peers.ourself.version == 4 and not peers.ourself.connections


def test_add_local_connection_to_unknown_peer_creates_placeholder() -> None:
    peers = new_table()
    peers.add_local_connection(B, "10.0.0.2:6783", False, False)
    assert peers.get(B) == Peer.placeholder(B)
    with pytest.raises(LocalProtocolError):
        peers.add_local_connection(US, "10.0.0.2:6783", False, False)


def test_fetch_with_default_and_refs() -> None:
    peers = new_table()
    first = make_peer(A, version=0)
    assert peers.fetch_with_default(first) is first
    assert peers.fetch_with_default(make_peer(A, uid=9)) is first
    assert peers.ref_count(A) == 2
    peers.release_ref(A)
    peers.release_ref(A)
    assert peers.ref_count(A) == 0
    with pytest.raises(LocalProtocolError):
        peers.release_ref(A)
    with pytest.raises(LocalProtocolError):
        peers.add_ref(D)


def test_container_protocol() -> None:
    peers = new_table()
    peers.apply_update(encode_peers([make_peer(C), make_peer(A)]))
    assert len(peers) == 3 and A in peers and D not in peers
    assert [p.name for p in peers] == sorted([US, A, C])
    assert peers.get(D) is None and peers.names() == {US, A, C}


# --- garbage collection --------------------------------------------------------------


def test_gc_removes_unreachable_unreferenced_peers() -> None:
    peers = new_table()
    peers.add_local_connection(A, "x:1", True, False)  # not established: still counts
    update = encode_peers(
        [make_peer(A, conns={B: False}), make_peer(B), make_peer(C, conns={D: True})]
    )
    peers.apply_update(update)
    assert {US, A, B, C, D} == peers.names()
    assert [p.name for p in peers.garbage_collect()] == sorted([C, D])
    assert peers.names() == {US, A, B}
    peers.add_ref(B)
    peers.delete_local_connection(A)
    assert [p.name for p in peers.garbage_collect()] == [A]
    assert peers.names() == {US, B}
    peers.release_ref(B)
    assert [p.name for p in peers.garbage_collect()] == [B]
    assert peers.names() == {US}


def test_gc_follows_one_sided_connections() -> None:
    peers = new_table()
    peers.add_local_connection(A, "x:1", True, True)
    peers.apply_update(encode_peers([make_peer(A, conns={C: False})]))  # C never lists A
    assert peers.garbage_collect() == []


def _decoded_names(payload: bytes) -> set[int]:
    listener = new_table()
    received, _ = listener.apply_update(payload)
    return received


def test_an_unreachable_peer_is_held_out_of_gossip_until_its_grace_ends() -> None:
    peers = new_table()
    peers.add_local_connection(A, "x:1", True, False)
    peers.apply_update(encode_peers([make_peer(A, conns={B: True}), make_peer(B)]))
    peers.delete_local_connection(A)  # A and B are now unreachable
    assert peers.garbage_collect(10.0, grace=5.0) == []
    assert peers.names() == {US, A, B} and peers.held_since() == 10.0
    assert _decoded_names(peers.encode()) == {US}  # as if collected
    assert peers.encode({A, B}) == b""  # a relay of only them sends nothing
    # copies of the entries still arriving merge to nothing: no news to relay
    _, changed = peers.apply_update(encode_peers([make_peer(A, conns={B: True}), make_peer(B)]))
    assert changed == set()
    assert peers.garbage_collect(14.9, grace=5.0) == []
    assert [p.name for p in peers.garbage_collect(15.0, grace=5.0)] == sorted([A, B])
    assert peers.names() == {US} and peers.held_since() == float("inf")


def test_a_peer_that_a_held_peer_lists_is_kept_until_that_one_goes() -> None:
    """B is due before A, which lists it; if B went first and A were then reached again,
    A's entry would list a peer with no entry of its own (the table would not be closed)."""
    peers = new_table()
    peers.apply_update(encode_peers([make_peer(B)]))
    assert peers.garbage_collect(0.0, grace=5.0) == []  # B held from 0
    peers.apply_update(encode_peers([make_peer(A, conns={B: True})]))
    assert peers.garbage_collect(3.0, grace=5.0) == []  # A held from 3
    assert peers.garbage_collect(6.0, grace=5.0) == []  # B due, but A lists it
    assert peers.held_since() == 3.0  # the next collection is A's, not a busy loop on B
    peers.add_local_connection(A, "x:1", True, True)  # A reached again: B with it
    assert B in peers and peers.garbage_collect(7.0, grace=5.0) == []
    peers.delete_local_connection(A)
    assert peers.garbage_collect(8.0, grace=5.0) == []  # both held again, from 8
    assert [p.name for p in peers.garbage_collect(13.0, grace=5.0)] == sorted([A, B])


def test_topology_gossip_about_only_held_or_unknown_peers_sends_no_message() -> None:
    peers = new_table()
    peers.apply_update(encode_peers([make_peer(A)]))
    peers.garbage_collect(0.0, grace=5.0)  # A held
    assert TopologyGossipData(peers, {A, D}).encode() == []
    assert len(TopologyGossipData(peers, {A, US}).encode()) == 1


@settings(max_examples=200)
@given(
    found=st.floats(0, 1e7, allow_nan=False),
    grace=st.floats(0.001, 100, allow_nan=False),
)
def test_a_held_peer_goes_exactly_when_the_collection_it_announces_is_due(
    found: float, grace: float
) -> None:
    peers = new_table()
    peers.apply_update(encode_peers([make_peer(A)]))
    assert peers.garbage_collect(found, grace) == []
    due = peers.held_since() + grace  # what the router sets its GC timer to
    assert [p.name for p in peers.garbage_collect(due, grace)] == [A]


def test_a_held_peer_reached_again_is_gossiped_and_its_grace_starts_over() -> None:
    peers = new_table()
    peers.apply_update(encode_peers([make_peer(A)]))
    assert peers.garbage_collect(0.0, grace=5.0) == []
    peers.add_local_connection(A, "x:1", True, True)
    assert peers.garbage_collect(4.0, grace=5.0) == []
    assert peers.held_since() == float("inf")
    assert _decoded_names(peers.encode()) == {US, A}
    peers.delete_local_connection(A)
    assert peers.garbage_collect(6.0, grace=5.0) == []  # unreachable again: a new grace
    assert [p.name for p in peers.garbage_collect(11.0, grace=5.0)] == [A]


def test_a_referenced_peer_is_neither_held_nor_collected() -> None:
    peers = new_table()
    peers.apply_update(encode_peers([make_peer(A)]))
    assert peers.garbage_collect(0.0, grace=5.0) == []
    peers.add_ref(A)
    assert peers.garbage_collect(1.0, grace=5.0) == []
    assert peers.held_since() == float("inf") and A in _decoded_names(peers.encode())
    assert peers.garbage_collect(100.0, grace=5.0) == []
    peers.release_ref(A)
    assert peers.garbage_collect(100.0, grace=5.0) == []
    assert [p.name for p in peers.garbage_collect(105.0, grace=5.0)] == [A]


# --- short IDs ----------------------------------------------------------------------


def test_short_id_collision_with_lower_name_moves_us() -> None:
    peers = new_table(short_id=99)
    lower = parse_peer_name("00:00:00:00:00:05")
    peers.apply_update(encode_peers([make_peer(lower, short_id=99), make_peer(A, short_id=5)]))
    version = peers.ourself.version
    assert peers.check_short_id_collision()
    assert peers.ourself.short_id not in (99, 5)
    assert 0 <= peers.ourself.short_id < 4096
    assert peers.ourself.version == version + 1
    assert not peers.check_short_id_collision()
    owner = peers.get_by_short_id(99)
    assert owner is not None and owner.name == lower


def test_short_id_collision_with_higher_name_keeps_ours() -> None:
    peers = new_table(short_id=99)
    peers.apply_update(encode_peers([make_peer(A, short_id=99)]))  # A > US
    assert not peers.check_short_id_collision()
    assert peers.ourself.short_id == 99
    assert peers.get_by_short_id(99) is peers.ourself


def test_short_id_holders_without_has_short_id_do_not_count() -> None:
    peers = new_table(short_id=99)
    lower = parse_peer_name("00:00:00:00:00:05")
    peers.apply_update(encode_peers([make_peer(lower, short_id=99, has_short_id=False)]))
    assert not peers.check_short_id_collision()


def test_short_id_choice_takes_the_last_free_one() -> None:
    peers = new_table(short_id=0)
    others = [make_peer(1 + i, short_id=i, has_short_id=True) for i in range(4096) if i != 1234]
    peers.apply_update(encode_peers(others))
    assert peers.check_short_id_collision()
    assert peers.ourself.short_id == 1234
    peers.apply_update(encode_peers([make_peer(1 + 1234, short_id=1234)]))
    assert not peers.check_short_id_collision()  # all taken: try again later


# --- malformed input ------------------------------------------------------------------


def _update_with_name(raw: bytes) -> bytes:
    good = encode_peers([make_peer(A)])
    return good.replace(bytes.fromhex("aabbccddeeff"), raw)


@pytest.mark.parametrize(
    "payload",
    [
        A5[:-1],
        A5[:150],  # cut inside a type definition
        A5 + b"\x00",
        _update_with_name(b"\xaa\xbb\xcc\xdd\xee\xff\x00"),
        _update_with_name(b"\xaa\xbb\xcc\xdd\xee"),
        _update_with_name(b"\x00" * 6),
    ],
)
def test_malformed_update_raises_and_leaves_state(payload: bytes) -> None:
    peers = new_table()
    peers.apply_update(A2)
    before = snapshot(peers)
    with pytest.raises(RemoteProtocolError):
        peers.apply_update(payload)
    assert snapshot(peers) == before


def test_missing_connection_list_is_a_topology_error() -> None:
    with pytest.raises(TopologyError):
        new_table().apply_update(A5[: 0x63 + 0x25])


def test_update_size_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from weavenet.core.mesh import topology_codec

    monkeypatch.setattr(topology_codec, "MAX_UPDATE_PEERS", 3)
    peers = new_table()
    peers.apply_update(encode_peers([make_peer(n) for n in (1, 2, 3)]))
    with pytest.raises(TopologyError):
        peers.apply_update(encode_peers([make_peer(n) for n in (4, 5, 6, 7)]))
    assert peers.names() == {US, 1, 2, 3}


@settings(deadline=None, max_examples=150)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_remote_errors(data: bytes) -> None:
    peers = new_table()
    peers.apply_update(A2)
    before = snapshot(peers)
    try:
        peers.apply_update(data)
    except RemoteProtocolError:
        assert snapshot(peers) == before


@settings(deadline=None, max_examples=150)
@given(st.integers(0, len(A2) - 1), st.integers(0, 255))
def test_corrupted_vector_only_raises_remote_errors(pos: int, byte: int) -> None:
    data = bytearray(A2)
    data[pos] = byte
    peers = new_table()
    peers.apply_update(A5)
    before = snapshot(peers)
    try:
        peers.apply_update(bytes(data))
    except RemoteProtocolError:
        assert snapshot(peers) == before


def test_cached_encoding_is_the_exact_go_stream() -> None:
    import random as _random

    from weavenet.core.mesh.peer import encode_peers
    from weavenet.core.mesh.topology_codec import EncodedPeers

    rng = _random.Random(5)
    peers = [
        Peer(
            n,
            f"p{n}",
            rng.getrandbits(64),
            rng.randrange(1, 9),
            rng.randrange(4096),
            True,
            {
                m: ConnectionSummary(m, f"10.0.0.{m}:6783", m < n, bool(m % 2))
                for m in range(1, 6)
                if m != n
            },
        )
        for n in range(1, 6)
    ]
    cache = EncodedPeers()
    assert cache.encode(peers) == encode_peers(peers)
    assert cache.encode(peers[2:]) == encode_peers(peers[2:])  # cached values reused
    peers[3].version += 1
    peers[3].connections.pop(1, None)
    assert cache.encode(peers) == encode_peers(peers)
    assert cache.encode([]) == b""


def _expected_status(peers: Peers) -> list[dict[str, object]]:
    """/report's Peers rows built from scratch, from the table's public view."""

    def nick(name: int) -> str:
        peer = peers.get(name)
        return peer.nickname if peer is not None else ""

    return [
        {
            "Name": format_peer_name(p.name),
            "NickName": p.nickname,
            "UID": p.uid,
            "ShortID": p.short_id,
            "Version": p.version,
            "Connections": [
                {
                    "Name": format_peer_name(remote),
                    "NickName": nick(remote),
                    "Address": c.remote_tcp_addr,
                    "Outbound": c.outbound,
                    "Established": c.established,
                }
                for remote, c in sorted(p.connections.items())
            ]
            or None,
        }
        for p in peers
    ]


_OTHERS = [A, B, C, D]
_update = st.tuples(
    st.sampled_from(_OTHERS),
    st.integers(1, 6),  # version
    st.sampled_from(["", "x", "y"]),  # nickname ("" -> the default one)
    st.dictionaries(st.sampled_from([*_OTHERS, US]), st.booleans(), max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(_update, st.sampled_from(_OTHERS)), max_size=12))
def test_peer_status_rows_match_a_fresh_build_after_any_changes(steps: list[object]) -> None:
    peers = new_table()
    for step in steps:
        if isinstance(step, tuple):
            name, version, nickname, conns = step
            conns.pop(name, None)
            peers.apply_update(
                encode_peers([make_peer(name, 1, version, 1, True, nickname, conns)])
            )
        elif step in peers.ourself.connections:
            peers.set_local_connection_established(step)  # type: ignore[arg-type]
        elif step in peers:
            peers.add_local_connection(step, "10.0.0.9:6783", False, False)  # type: ignore[arg-type]
        assert peers.peer_status_list() == _expected_status(peers)
