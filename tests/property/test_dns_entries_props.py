"""Laws of the entry CRDT and of the gossip codec."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.dns.codec import DnsGossipError, decode_gossip, encode_gossip, merge_entries
from weavenet.core.dns.entries import TOMBSTONE_TIMEOUT, Entries, Entry, merge_entry

ORIGINS = st.sampled_from([0x0A0000000001, 0x0B0000000002, 0xFFFFFFFFFFFF])
NAMES = st.sampled_from(
    ["web.weave.local.", "WEB.weave.local.", "db.weave.local.", "x.y.weave.local."]
)

entries = st.builds(
    Entry,
    container_id=st.sampled_from(["c1", "c2", "weave:extern"]),
    origin=ORIGINS,
    addr=st.sampled_from([0x0A200001, 0x0A200002, 0xFFFFFFFF]),
    hostname=NAMES,
    version=st.integers(0, 5),
    tombstone=st.sampled_from([0, 1_600_000_000, 1_600_000_001]),
)
entry_sets = st.lists(entries, max_size=12)


def state(*batches: list[Entry]) -> list[Entry]:
    es = Entries()
    for batch in batches:
        es.merge(merge_entries(batch, []))  # one batch holds each identity once, as on the wire
    return es.sorted()


@given(entry_sets, entry_sets)
def test_merge_is_commutative(a: list[Entry], b: list[Entry]) -> None:
    assert merge_entries(a, b) == merge_entries(b, a)
    assert state(a, b) == state(b, a)


@given(entry_sets, entry_sets, entry_sets)
def test_merge_is_associative(a: list[Entry], b: list[Entry], c: list[Entry]) -> None:
    assert merge_entries(merge_entries(a, b), c) == merge_entries(a, merge_entries(b, c))


@given(entry_sets)
def test_merge_is_idempotent(a: list[Entry]) -> None:
    once = merge_entries(a, [])
    assert merge_entries(once, once) == once
    assert state(a, a) == state(a)


@given(entries, st.integers(1, 3), st.integers(0, 2_000_000_000))
def test_a_higher_version_wins_whatever_the_tombstones(e: Entry, up: int, stamp: int) -> None:
    newer_live = Entry(*e.key, version=e.version + up, tombstone=0)
    newer_dead = Entry(*e.key, version=e.version + up, tombstone=stamp)
    assert merge_entry(e, newer_live) == newer_live == merge_entry(newer_live, e)
    assert merge_entry(e, newer_dead) == newer_dead == merge_entry(newer_dead, e)


@given(entry_sets, st.integers(0, 4000))
def test_expiry_keeps_live_entries_and_young_tombstones(a: list[Entry], age: int) -> None:
    es = Entries()
    es.merge(merge_entries(a, []))
    now = 1_600_000_000 + age
    es.expire_tombstones(now)
    kept = es.sorted()
    assert all(e.live or now - e.tombstone <= TOMBSTONE_TIMEOUT for e in kept)
    assert [e for e in merge_entries(a, []) if e.live] == [e for e in kept if e.live]


@given(entry_sets, st.integers(-(1 << 40), 1 << 40))
def test_codec_roundtrip(a: list[Entry], ts: int) -> None:
    unique = list(merge_entries(a, []))
    assert decode_gossip(encode_gossip(ts, unique)) == (ts, unique)


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_our_protocol_error(data: bytes) -> None:
    with contextlib.suppress(DnsGossipError):
        decode_gossip(data)


@settings(max_examples=300)
@given(entry_sets, st.data())
def test_corrupted_payloads_raise_only_our_protocol_error(
    a: list[Entry], data: st.DataObject
) -> None:
    raw = bytearray(encode_gossip(1_600_000_000, list(merge_entries(a, []))))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DnsGossipError):
        decode_gossip(bytes(raw))
