"""Property tests: hostile sleeve packets, record round trips, batching, replay model."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.overlay.sleeve_codec import (
    FRAME_OVERHEAD,
    MAX_FRAMES_PER_PACKET,
    Batcher,
    FrameRecord,
    SleeveError,
    classify_special,
    decode_records,
    encode_plain,
    encode_records,
    split_packet,
)
from weavenet.core.overlay.sleeve_crypto import Replayed, SleeveDecryptor, SleeveEncryptor

KEY = bytes(range(32))
WINDOW = 1 << 20

names = st.integers(0, (1 << 48) - 1)
records = st.builds(FrameRecord, names, names, st.binary(max_size=200))


@given(st.binary(max_size=600))
def test_split_and_decode_never_crash(data: bytes) -> None:
    try:
        sender, rest = split_packet(data)
    except SleeveError:
        assert len(data) < 6
        return
    assert sender.to_bytes(6, "big") + rest == data
    parsed, error = decode_records(rest)
    if error is None:
        assert encode_records(parsed) == rest
    else:
        assert isinstance(error, str)
        assert rest.startswith(encode_records(parsed))
    for record in parsed:
        classify_special(record.frame)


@given(st.binary(max_size=300), st.booleans())
def test_decryptor_on_garbage_raises_only_sleeve_errors(data: bytes, remote_outbound: bool) -> None:
    dec = SleeveDecryptor(KEY, remote_outbound)
    with contextlib.suppress(SleeveError):
        dec.open(data)


@given(st.lists(records, max_size=20), names)
def test_records_round_trip(recs: list[FrameRecord], sender: int) -> None:
    packet = encode_plain(sender, recs)
    assert split_packet(packet) == (sender, encode_records(recs))
    assert decode_records(packet, start=6) == (recs, None)


@given(st.lists(records, max_size=10), st.integers(0, 2**40), st.booleans(), st.booleans())
def test_seal_open_round_trip(recs: list[FrameRecord], seq: int, df: bool, outbound: bool) -> None:
    enc = SleeveEncryptor(KEY, outbound, sender=5)
    enc.seq = enc.seq_df = seq
    packet = enc.seal(encode_records(recs), df)
    assert len(packet) == 30 + sum(FRAME_OVERHEAD + len(r.frame) for r in recs)
    body = SleeveDecryptor(KEY, remote_outbound=outbound).open(packet, start=6)
    assert decode_records(body) == (recs, None)


@settings(max_examples=200)
@given(
    st.lists(st.builds(FrameRecord, names, names, st.binary(max_size=120)), max_size=400),
    st.integers(60, 2000),
    st.sampled_from([6, 30]),
    st.lists(st.integers(0, 400), max_size=5),
)
def test_batcher_bounds_and_loses_nothing(
    recs: list[FrameRecord], max_payload: int, overhead: int, flush_at: list[int]
) -> None:
    batcher = Batcher(max_payload, overhead)
    bodies: list[bytes] = []
    for i, record in enumerate(recs):
        if i in flush_at and (body := batcher.flush()) is not None:
            bodies.append(body)
        bodies.extend(batcher.add(record))
    if (body := batcher.flush()) is not None:
        bodies.append(body)
    out: list[FrameRecord] = []
    for body in bodies:
        parsed, error = decode_records(body)
        assert error is None and 1 <= len(parsed) <= MAX_FRAMES_PER_PACKET
        # over the limit only when a single record cannot fit on its own
        assert overhead + len(body) <= max_payload or len(parsed) == 1
        out.extend(parsed)
    assert out == recs


def _model_accepts(seen: set[int], top: list[int], seq: int) -> bool:
    """Declarative replay rule: new, and not older than the window before the newest."""
    if seq in seen or seq // WINDOW < top[0] - 1:
        return False
    seen.add(seq)
    top[0] = max(top[0], seq // WINDOW)
    return True


seqs = st.builds(
    lambda w, off: w * WINDOW + off,
    st.integers(0, 6),
    st.sampled_from([0, 1, 2, 7, 8, 9, 1000, WINDOW - 2, WINDOW - 1]),
)


@settings(max_examples=150)
@given(st.lists(st.tuples(seqs, st.booleans()), max_size=40))
def test_replay_window_matches_model(stream: list[tuple[int, bool]]) -> None:
    enc = SleeveEncryptor(KEY, outbound=False, sender=9)
    dec = SleeveDecryptor(KEY, remote_outbound=False)
    models: dict[bool, tuple[set[int], list[int]]] = {False: (set(), [0]), True: (set(), [0])}
    for seq, df in stream:
        enc.seq = enc.seq_df = seq
        packet = enc.seal(b"x", df)
        try:
            dec.open(packet, start=6)
            accepted = True
        except Replayed:
            accepted = False
        assert accepted == _model_accepts(*models[df], seq)
