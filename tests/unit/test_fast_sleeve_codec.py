"""The fast sleeve's datagram codec, reassembly, replay window and key schedule."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.overlay.fast_sleeve_codec import (
    HEADER,
    FastSleeveError,
    Kind,
    Reassembler,
    pack_prefix,
    parse_header,
    split,
)
from weavenet.core.overlay.fast_sleeve_crypto import Opener, Sealer, direction_keys
from weavenet.core.overlay.replay import ReplayWindow

PEER = 0x0A0B0C0D0E0F


def _datagrams(body: bytes, size: int, sfid: int = 7, per_send: int = 64) -> list[bytes]:
    prefix = pack_prefix(Kind.DATA, PEER, sfid)
    out = []
    for iov in split(prefix, body, size, per_send):
        for i in range(0, len(iov), 2):
            out.append(bytes(iov[i]) + bytes(iov[i + 1]))
    return out


def _feed(r: Reassembler, datagrams: list[bytes]) -> list[bytes]:
    done = []
    for d in datagrams:
        h = parse_header(d)
        got = r.add(h.sfid, h.index, h.count, memoryview(d)[HEADER:])
        if got is not None:
            done.append(bytes(got))
    return done


@given(
    st.sampled_from(list(Kind)),
    st.integers(0, 2**48 - 1),
    st.integers(1, 2**48 - 1),
    st.integers(1, 255),
    st.data(),
)
def test_header_round_trip(
    kind: Kind, sender: int, sfid: int, count: int, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, count - 1))
    head = parse_header(pack_prefix(kind, sender, sfid) + bytes((index, count)) + b"x")
    assert (head.kind, head.sender, head.sfid, head.index, head.count) == (
        kind, sender, sfid, index, count,
    )  # fmt: skip


@given(st.binary(max_size=64))
def test_random_bytes_parse_or_raise_only_our_error(data: bytes) -> None:
    try:
        head = parse_header(data)
    except FastSleeveError:
        return
    assert head.index < head.count and data[0] == 0xF5


def test_split_cuts_equal_chunks_and_groups_sends() -> None:
    body = bytes(range(256)) * 40  # 10240 bytes
    sends = split(pack_prefix(Kind.DATA, PEER, 1), body, 1016, per_send=4)
    sizes = [sum(len(b) for b in iov) for iov in sends]
    assert sizes == [4 * 1016, 4 * 1016, 3 * HEADER + 10240 - 8 * 1000]
    assert [len(iov) // 2 for iov in sends] == [4, 4, 3]


@given(st.binary(min_size=1, max_size=20000), st.integers(300, 3000), st.randoms())
def test_reassembly_in_any_order_with_duplicates(
    body: bytes, size: int, rng: random.Random
) -> None:
    datagrams = _datagrams(body, size)
    shuffled = datagrams + rng.sample(datagrams, k=min(3, len(datagrams)))
    rng.shuffle(shuffled)
    r = Reassembler()
    done = _feed(r, shuffled)
    # a one-datagram superframe passes through each time: the replay window drops copies
    assert done == [body] * (shuffled.count(datagrams[0]) if len(datagrams) == 1 else 1)
    assert not r.pending


@given(st.binary(min_size=2000, max_size=20000), st.randoms())
def test_a_superframe_missing_a_datagram_is_never_delivered(
    body: bytes, rng: random.Random
) -> None:
    datagrams = _datagrams(body, 500)
    del datagrams[rng.randrange(len(datagrams))]
    r = Reassembler(capacity=1)
    assert _feed(r, datagrams) == []
    later = [_datagrams(b"new%d" % i * 300, 500, sfid=100 + i) for i in range(3)]
    assert _feed(r, [d for ds in later for d in ds]) == [b"new%d" % i * 300 for i in range(3)]
    assert r.take_lost() == 1 and r.take_lost() == 0


def test_inconsistent_chunks_drop_the_superframe() -> None:
    good = _datagrams(bytes(3000), 1000)
    bad = pack_prefix(Kind.DATA, PEER, 7) + bytes((1, 4)) + bytes(10)  # count 4, not 4? size
    r = Reassembler()
    _feed(r, good[:1])
    with pytest.raises(FastSleeveError):
        _feed(r, [bad])
    assert not r.pending and r.take_lost() == 1


@given(st.lists(st.integers(1, 3000), max_size=300))
def test_replay_window_accepts_each_number_once(numbers: list[int]) -> None:
    w = ReplayWindow(size=256)
    accepted: set[int] = set()
    for n in numbers:
        fresh = w.fresh(n)
        assert w.accept(n) == fresh
        if fresh:
            assert n not in accepted
            accepted.add(n)
        assert not w.fresh(n) and not w.accept(n)


def test_replay_window_rejects_what_fell_behind_it() -> None:
    w = ReplayWindow(size=64)
    assert w.accept(10) and w.accept(100)
    assert not w.fresh(10) and not w.fresh(36) and w.fresh(37) and w.fresh(99)
    assert not w.fresh(0)


def test_direction_keys_differ_and_pair_up() -> None:
    key = bytes(range(32))
    dial_send, dial_recv = direction_keys(key, outbound=True)
    listen_send, listen_recv = direction_keys(key, outbound=False)
    assert dial_send != dial_recv
    assert (dial_send, dial_recv) == (listen_recv, listen_send)
    assert direction_keys(bytes(32), True)[0] != dial_send
    with pytest.raises(FastSleeveError):
        direction_keys(b"short", True)


def test_sealed_superframe_opens_once_and_not_tampered_or_reflected() -> None:
    send, recv = direction_keys(bytes(range(32)), outbound=True)
    aad = pack_prefix(Kind.DATA, PEER, 5)
    sealed = bytes(Sealer(send).seal(5, aad, b"hello superframe"))
    assert b"hello" not in sealed
    assert bytes(Opener(send).open(5, aad, bytearray(sealed))) == b"hello superframe"
    for tampered in (
        sealed[:3] + bytes([sealed[3] ^ 1]) + sealed[4:],
        sealed[:-1],
    ):
        with pytest.raises(FastSleeveError):
            Opener(send).open(5, aad, bytearray(tampered))
    with pytest.raises(FastSleeveError):  # another nonce (superframe id)
        Opener(send).open(6, aad, bytearray(sealed))
    with pytest.raises(FastSleeveError):  # the other direction's key: a reflected frame
        Opener(recv).open(5, aad, bytearray(sealed))
