"""Topology merge is a join: commutative, associative and idempotent (acceptance item).

Real peers never send two different records under the same (name, UID, Version),
so every generated entry's content is a function of that key (plus HasShortID,
which only decides the ShortID field).
"""

from __future__ import annotations

import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.mesh.peer import encode_peers
from weavenet.core.mesh.peers import ConnectionSummary, Peer, Peers, TopologyError

US = 0xFEFEFEFEFEFE  # ourself: never among the generated peers
OUR_UID = 1000
POOL = list(range(1, 13))  # generated names: small, so placeholders and overlaps are common

Key = tuple[int, int, int, bool]  # name, uid, version, has_short_id


def make_entry(seed: int, key: Key) -> Peer:
    name, uid, version, has_short_id = key
    rnd = random.Random(f"{seed}:{name}:{uid}:{version}")
    short_id = rnd.randrange(4096)
    peer = Peer(name, f"p{name}u{uid}v{version}", uid, version, short_id, has_short_id)
    if not has_short_id:
        peer.short_id = 0
    for remote in rnd.sample(POOL, rnd.randrange(4)):
        addr = f"10.0.{rnd.randrange(4)}.{remote}:{rnd.choice((6783, 40000))}"
        peer.connections[remote] = ConnectionSummary(
            remote, addr, rnd.random() < 0.5, rnd.random() < 0.5
        )
    return peer


keys = st.tuples(st.sampled_from(POOL), st.integers(1, 3), st.integers(0, 3), st.booleans())
update_keys = st.lists(st.lists(keys, min_size=1, max_size=5), min_size=1, max_size=5)


def fresh() -> Peers:
    return Peers(Peer(US, "us", OUR_UID, 1, 4095, True), random.Random(0))


def encode(seed: int, group: list[Key]) -> bytes:
    return encode_peers([make_entry(seed, key) for key in group])


def state(peers: Peers) -> list[tuple[object, ...]]:
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


def apply_all(updates: list[bytes]) -> Peers:
    peers = fresh()
    for update in updates:
        peers.apply_update(update)
    return peers


@settings(deadline=None, max_examples=100)
@given(st.integers(0, 2**16), update_keys, st.randoms(use_true_random=False))
def test_merge_is_commutative(seed: int, groups: list[list[Key]], rnd: random.Random) -> None:
    updates = [encode(seed, group) for group in groups]
    shuffled = updates[:]
    rnd.shuffle(shuffled)
    assert state(apply_all(updates)) == state(apply_all(shuffled))


@settings(deadline=None, max_examples=100)
@given(st.integers(0, 2**16), update_keys, st.randoms(use_true_random=False))
def test_merge_is_associative(seed: int, groups: list[list[Key]], rnd: random.Random) -> None:
    """Any regrouping of the same entries into updates gives the same table."""
    flat = [key for group in groups for key in group]
    cuts = sorted(rnd.sample(range(1, len(flat)), rnd.randrange(len(flat)))) if flat else []
    regrouped = [flat[i:j] for i, j in zip([0, *cuts], [*cuts, len(flat)], strict=True)]
    expected = state(apply_all([encode(seed, group) for group in groups]))
    assert state(apply_all([encode(seed, flat)])) == expected
    assert state(apply_all([encode(seed, group) for group in regrouped])) == expected


@settings(deadline=None, max_examples=100)
@given(st.integers(0, 2**16), update_keys)
def test_merge_is_idempotent(seed: int, groups: list[list[Key]]) -> None:
    updates = [encode(seed, group) for group in groups]
    peers = apply_all(updates)
    before = state(peers)
    for group, update in zip(groups, updates, strict=True):
        received, new = peers.apply_update(update)
        assert received == {key[0] for key in group}
        assert new == set()
    assert state(peers) == before


@settings(deadline=None, max_examples=100)
@given(st.integers(0, 2**16), update_keys)
def test_full_state_gossip_converges(seed: int, groups: list[list[Key]]) -> None:
    """A table's own encode() carries everything another table needs to match it."""
    source = apply_all([encode(seed, group) for group in groups])
    replica = fresh()
    replica.apply_update(source.encode())
    assert state(replica) == state(source)
    assert replica.apply_update(source.encode())[1] == set()


@settings(deadline=None, max_examples=100)
@given(
    st.lists(st.tuples(st.integers(1, 999), st.integers(0, 20)), min_size=1, max_size=6),
    st.randoms(use_true_random=False),
)
def test_old_incarnations_of_ourself_commute(
    stale: list[tuple[int, int]], rnd: random.Random
) -> None:
    """Whatever order stale entries about us arrive in, we end one above the highest."""
    updates = [encode_peers([Peer(US, "old", uid, v, 1, True)]) for uid, v in stale]
    shuffled = updates[:]
    rnd.shuffle(shuffled)
    first, second = apply_all(updates), apply_all(shuffled)
    expected = max(1, max(v for _, v in stale) + 1)
    assert first.ourself.version == second.ourself.version == expected
    assert first.ourself.uid == OUR_UID


# The straight-line connection-list codec must agree with the generic gob codec.
_conn_lists = st.lists(
    st.builds(
        ConnectionSummary,
        st.integers(1, (1 << 48) - 1),
        st.text(max_size=30),
        st.booleans(),
        st.booleans(),
    ),
    max_size=20,
)


@settings(deadline=None, max_examples=150)
@given(_conn_lists)
def test_fast_connection_list_codec_matches_generic_gob(conns: list[ConnectionSummary]) -> None:
    from weavenet.core.mesh.peer import CONNECTION_SUMMARIES, connections_from_value
    from weavenet.core.mesh.topology_codec import (
        MAX_PEER_CONNECTIONS,
        encode_connection_list,
        parse_connection_list,
    )
    from weavenet.core.wire.gob import Decoder, Encoder

    by_name = {c.remote: c for c in conns}
    ordered = [by_name[n] for n in sorted(by_name)]
    value = [
        {
            "NameByte": c.remote.to_bytes(6, "big"),
            "RemoteTCPAddr": c.remote_tcp_addr,
            "Outbound": c.outbound,
            "Established": c.established,
        }
        for c in ordered
    ]
    enc = Encoder()
    enc.encode(CONNECTION_SUMMARIES, [])  # definitions out of the way
    generic = enc.encode(CONNECTION_SUMMARIES, value)
    id_bytes = enc.encode(CONNECTION_SUMMARIES, [])[1:-2]
    assert encode_connection_list(id_bytes, ordered) == generic
    stream = Encoder().encode(CONNECTION_SUMMARIES, value)
    dec = Decoder(stream)
    dec.next_layout()
    fast = parse_connection_list(dec.take_raw(), MAX_PEER_CONNECTIONS)
    assert fast == connections_from_value(Decoder(stream).decode(CONNECTION_SUMMARIES)) == by_name


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=200))
def test_fast_connection_list_parser_raises_only_topology_errors(body: bytes) -> None:
    from weavenet.core.mesh.topology_codec import parse_connection_list

    with contextlib.suppress(TopologyError):
        parse_connection_list(body, 100)


@settings(deadline=None, max_examples=150)
@given(
    st.builds(
        Peer,
        st.integers(1, (1 << 48) - 1),
        st.text(max_size=20),
        st.integers(0, (1 << 64) - 1),
        st.integers(0, (1 << 64) - 1),
        st.integers(0, 0xFFFF),
        st.booleans(),
    )
)
def test_fast_summary_parser_matches_generic_gob(peer: Peer) -> None:
    from weavenet.core.mesh.peer import PEER_SUMMARY, peer_from_summary, summary_value
    from weavenet.core.mesh.topology_codec import parse_summary
    from weavenet.core.wire.gob import Decoder, Encoder

    stream = Encoder().encode(PEER_SUMMARY, summary_value(peer))
    dec = Decoder(stream)
    dec.next_layout()
    fast = parse_summary(dec.take_raw())
    assert fast == peer_from_summary(Decoder(stream).decode(PEER_SUMMARY))
    assert (fast.name, fast.nickname, fast.uid, fast.version) == (
        peer.name,
        peer.nickname,
        peer.uid,
        peer.version,
    )


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=100))
def test_fast_summary_parser_raises_only_topology_errors(body: bytes) -> None:
    from weavenet.core.mesh.topology_codec import parse_summary

    with contextlib.suppress(TopologyError):
        parse_summary(body)
