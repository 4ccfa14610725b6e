"""Sleeve UDP packet format, plain and NaCl (weave-wire §7.2-§7.4, vectors A.6)."""

from __future__ import annotations

import pytest

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.overlay.sleeve_codec import (
    FRAME_OVERHEAD,
    MAX_UDP_PAYLOAD,
    NACL_PACKET_OVERHEAD,
    PLAIN_PACKET_OVERHEAD,
    Batcher,
    FrameRecord,
    PlainSealer,
    SleeveError,
    Special,
    classify_special,
    decode_records,
    encode_plain,
    encode_records,
    frag_test_frame,
    heartbeat_frame,
    mtu_test_frame,
    overhead_df,
    pmtu_probe_frame,
    split_packet,
)
from weavenet.core.overlay.sleeve_crypto import (
    DecryptFailed,
    Replayed,
    SleeveDecryptor,
    SleeveEncryptor,
)

KEY = bytes.fromhex("28db2f6c9b6a6b6d197e6a88ea60a996f47d38f8de7f5fbeb2311e182ede683e")
A = 0xAABBCCDDEEFF  # outbound side in A.6
B = 0x020000000001
F1 = bytes.fromhex("1122334455660a0b0c0d0e0f0800deadbeef")
F2 = bytes.fromhex("ffffffffffff0a0b0c0d0e0f080601")
R1 = FrameRecord(A, B, F1)
R2 = FrameRecord(A, B, F2)

PLAIN_2 = bytes.fromhex(
    "aabbccddeeff"
    "aabbccddeeff0200000000010012" + F1.hex() + "aabbccddeeff020000000001000f" + F2.hex()
)
NACL_OUT_SEQ0 = bytes.fromhex(
    "aabbccddeeff0000000000000000"
    "d0402eebc227d7837bbc01fea28dfe6de2950d1cba374136990c0514fd081fea5e6e8e848b3b677d929356"
    "acfdd81bf58d88d1d7a957105fbb77a74024789602b500cd64da9b711dd72f25cd46"
)
NACL_OUT_SEQ1 = bytes.fromhex(
    "aabbccddeeff0000000000000001"
    "0d23f92bf99b64ab6b178237c97350cd70a356b07596a98ad7b34c45190c408229673755144f3a6e25ad"
    "843f9c0765c0"
)
NACL_OUT_DF0 = bytes.fromhex(
    "aabbccddeeff8000000000000000"
    "740cd7d120209952aad2454f8ac2a778f43b338870d2a8b13c10cf7a57b760673ca2e0843492c145092645"
    "f38cf0b4d6"
)
NACL_IN_SEQ0 = bytes.fromhex(
    "0200000000010000000000000000"
    "bafbde74f90bd524f7d25fc08ac585cb76c2e8e9e0a570e4ee5df4627f4b600f7bdd4e219bacb07d33e90c"
    "004ebee5a3"
)
PLAIN_HEARTBEAT = bytes.fromhex(
    "aabbccddeeffaabbccddeeff020000000001001600000000000000000000000000001122334455667788"
)


# --- A.6 vectors ------------------------------------------------------------------


def test_plain_two_frame_packet_vector() -> None:
    assert encode_plain(A, [R1, R2]) == PLAIN_2
    sender, rest = split_packet(PLAIN_2)
    assert sender == A
    assert decode_records(rest) == ([R1, R2], None)
    assert decode_records(PLAIN_2, start=6) == ([R1, R2], None)
    assert decode_records(memoryview(PLAIN_2)[6:]) == ([R1, R2], None)


def test_plain_heartbeat_vector() -> None:
    record = FrameRecord(A, B, heartbeat_frame(0x1122334455667788))
    assert encode_plain(A, [record]) == PLAIN_HEARTBEAT
    records, error = decode_records(PLAIN_HEARTBEAT, start=6)
    assert error is None and records == [record]
    assert classify_special(records[0].frame) == Special("heartbeat", conn_uid=0x1122334455667788)


def test_nacl_outbound_vectors_seal() -> None:
    enc = SleeveEncryptor(KEY, outbound=True, sender=A)
    assert enc.seal(encode_records([R1, R2]), df=False) == NACL_OUT_SEQ0
    assert enc.seal(encode_records([R1]), df=False) == NACL_OUT_SEQ1
    # the DF path has its own counter: still at 0 after two non-DF packets
    assert enc.seal(encode_records([R1]), df=True) == NACL_OUT_DF0
    assert (enc.seq, enc.seq_df) == (2, 1)


def test_nacl_inbound_vector_seal() -> None:
    enc = SleeveEncryptor(KEY, outbound=False, sender=B)
    assert enc.seal(encode_records([FrameRecord(B, A, F1)]), df=False) == NACL_IN_SEQ0


def test_nacl_outbound_vectors_open_at_the_inbound_end() -> None:
    dec = SleeveDecryptor(KEY, remote_outbound=True)
    for packet, records in [
        (NACL_OUT_SEQ0, [R1, R2]),
        (NACL_OUT_SEQ1, [R1]),
        (NACL_OUT_DF0, [R1]),
    ]:
        sender, rest = split_packet(packet)
        assert sender == A
        assert decode_records(dec.open(rest)) == (records, None)


def test_nacl_inbound_vector_opens_at_the_outbound_end() -> None:
    dec = SleeveDecryptor(KEY, remote_outbound=False)
    assert dec.open(NACL_IN_SEQ0, start=6) == encode_records([FrameRecord(B, A, F1)])


def test_direction_bit_matters() -> None:
    with pytest.raises(DecryptFailed):
        SleeveDecryptor(KEY, remote_outbound=False).open(NACL_OUT_SEQ0, start=6)
    with pytest.raises(DecryptFailed):
        SleeveDecryptor(KEY, remote_outbound=True).open(NACL_IN_SEQ0, start=6)


# --- replay protection ------------------------------------------------------------


def _packets(n: int, df: bool = False) -> list[bytes]:
    enc = SleeveEncryptor(KEY, outbound=True, sender=A)
    return [enc.seal(bytes([i % 256]), df) for i in range(n)]


def _with_seq(seq: int, df: bool = False) -> bytes:
    """A valid packet carrying sequence number ``seq`` (jump the counter)."""
    enc = SleeveEncryptor(KEY, outbound=True, sender=A)
    enc.seq = enc.seq_df = seq
    return enc.seal(seq.to_bytes(8, "big"), df)


def _opens(dec: SleeveDecryptor, packet: bytes) -> bool:
    try:
        dec.open(packet, start=6)
    except Replayed:
        return False
    return True


def test_reopening_a_packet_is_replay_and_changes_nothing() -> None:
    dec = SleeveDecryptor(KEY, remote_outbound=True)
    p0, p1, p2 = _packets(3)
    assert dec.open(p1, start=6) == b"\x01"
    with pytest.raises(Replayed):
        dec.open(p1, start=6)
    with pytest.raises(Replayed):
        dec.open(p1, start=6)
    # the failed attempts neither consumed nor blocked the neighbours
    assert _opens(dec, p0) and _opens(dec, p2)
    assert not _opens(dec, p0) and not _opens(dec, p1) and not _opens(dec, p2)


def test_out_of_order_within_window_accepted_once() -> None:
    dec = SleeveDecryptor(KEY, remote_outbound=True)
    packets = _packets(8)
    order = [5, 0, 7, 2, 1, 6, 3, 4]
    assert all(_opens(dec, packets[i]) for i in order)
    assert not any(_opens(dec, packets[i]) for i in order)


def test_previous_window_still_accepted_older_rejected() -> None:
    w = 1 << 20
    dec = SleeveDecryptor(KEY, remote_outbound=True)
    assert _opens(dec, _with_seq(3 * w + 5))  # jump: window 3
    assert _opens(dec, _with_seq(2 * w + 9))  # previous window: fine once
    assert not _opens(dec, _with_seq(2 * w + 9))
    assert not _opens(dec, _with_seq(2 * w - 1))  # window 1: too old
    assert not _opens(dec, _with_seq(0))
    assert _opens(dec, _with_seq(4 * w))  # slide by one: window 3 becomes previous
    assert not _opens(dec, _with_seq(3 * w + 5))
    assert _opens(dec, _with_seq(3 * w + 6))
    assert not _opens(dec, _with_seq(2 * w + 10))  # window 2 is now too old


def test_jump_of_more_than_one_window_forgets_both_sets() -> None:
    w = 1 << 20
    dec = SleeveDecryptor(KEY, remote_outbound=True)
    assert _opens(dec, _with_seq(w + 1))
    assert _opens(dec, _with_seq(5 * w))
    assert not _opens(dec, _with_seq(w + 1))  # window 1 is now far too old
    assert _opens(dec, _with_seq(4 * w + 1))  # window 4 = previous, empty: accepted


def test_last_offset_of_a_window() -> None:
    dec = SleeveDecryptor(KEY, remote_outbound=True)
    last = (1 << 20) - 1
    assert _opens(dec, _with_seq(last))
    assert not _opens(dec, _with_seq(last))
    assert _opens(dec, _with_seq(last - 1))


def test_df_and_non_df_replay_state_independent() -> None:
    dec = SleeveDecryptor(KEY, remote_outbound=True)
    plain0 = _with_seq(0, df=False)
    df0 = _with_seq(0, df=True)
    assert _opens(dec, plain0)
    assert _opens(dec, df0)  # same sequence number, other path
    assert not _opens(dec, df0) and not _opens(dec, plain0)
    assert _opens(dec, _with_seq(5 << 20, df=True))  # DF path jumps ahead ...
    assert _opens(dec, _with_seq(1, df=False))  # ... the non-DF path is unaffected


def test_tampered_box_fails_and_does_not_advance() -> None:
    dec = SleeveDecryptor(KEY, remote_outbound=True)
    far = bytearray(_with_seq(7 << 20))
    far[-1] ^= 1
    with pytest.raises(DecryptFailed):
        dec.open(bytes(far), start=6)
    # had the window moved to 7, sequence 0 would now be too old
    genuine = _with_seq(0)
    assert _opens(dec, genuine)
    tampered_seq = bytearray(genuine)
    tampered_seq[13] ^= 2  # header says seq 2, box was sealed for seq 0
    with pytest.raises(DecryptFailed):
        dec.open(bytes(tampered_seq), start=6)
    assert _opens(dec, _with_seq(2))


def test_errors_are_sleeve_errors() -> None:
    assert issubclass(SleeveError, RemoteProtocolError)
    assert issubclass(DecryptFailed, SleeveError) and issubclass(Replayed, SleeveError)
    dec = SleeveDecryptor(KEY, remote_outbound=True)
    for short in [b"", bytes(8), bytes(23)]:
        with pytest.raises(DecryptFailed):
            dec.open(short)


def test_bad_key_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        SleeveEncryptor(bytes(31), outbound=True, sender=A)
    with pytest.raises(LocalProtocolError):
        SleeveDecryptor(bytes(33), remote_outbound=True)


# --- records ------------------------------------------------------------------------


def test_split_packet_needs_a_sender() -> None:
    with pytest.raises(SleeveError):
        split_packet(bytes(5))
    assert split_packet(bytes.fromhex("020000000001")) == (B, b"")


def test_truncated_record_keeps_the_records_before_it() -> None:
    body = encode_records([R1, R2])
    records, error = decode_records(body[:-1])
    assert records == [R1] and error is not None and "truncated" in error
    records, error = decode_records(body + bytes(13))
    assert records == [R1, R2] and error is not None and "13 trailing" in error
    assert decode_records(b"") == ([], None)


def test_empty_frame_record_round_trips() -> None:
    record = FrameRecord(A, B, b"")
    assert decode_records(encode_records([record])) == ([record], None)


def test_unencodable_records_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        encode_records([FrameRecord(A, B, bytes(65536))])
    with pytest.raises(LocalProtocolError):
        encode_records([FrameRecord(1 << 48, B, b"")])
    with pytest.raises(LocalProtocolError):
        encode_plain(-1, [])


def test_plain_sealer_matches_encode_plain() -> None:
    sealer = PlainSealer(A)
    assert sealer.seal(encode_records([R1, R2]), df=True) == PLAIN_2
    assert sealer.packet_overhead == PLAIN_PACKET_OVERHEAD
    assert SleeveEncryptor.packet_overhead == NACL_PACKET_OVERHEAD


# --- batching -----------------------------------------------------------------------


def test_batcher_splits_on_size() -> None:
    batcher = Batcher(max_payload=100)
    assert batcher.add(R1) == []  # 6 + 32 = 38
    assert batcher.add(R1) == []  # 70
    assert batcher.add(R1) == [encode_records([R1, R1])]  # 102 > 100: flush first
    assert batcher.add(R2) == []  # 38 + 29 = 67
    assert batcher.pending == 2
    assert batcher.flush() == encode_records([R1, R2])
    assert batcher.flush() is None


def test_batcher_flushes_when_no_header_would_fit() -> None:
    # 6 + 32 + 29 = 67 leaves 3 bytes: not even an empty frame fits, so send now
    batcher = Batcher(max_payload=70)
    assert batcher.add(R1) == []
    assert batcher.add(R2) == [encode_records([R1, R2])]
    assert batcher.flush() is None


def test_batcher_flushes_before_the_record_that_does_not_fit() -> None:
    batcher = Batcher(max_payload=80, packet_overhead=NACL_PACKET_OVERHEAD)
    assert batcher.add(R2) == []  # 30 + 29 = 59
    assert batcher.add(R1) == [encode_records([R2])]  # 59 + 32 > 80
    assert batcher.flush() == encode_records([R1])


def test_batcher_caps_frames_per_packet() -> None:
    batcher = Batcher()
    bodies = [body for _ in range(250) for body in batcher.add(R2)]
    assert bodies == [encode_records([R2] * 100)] * 2
    assert batcher.flush() == encode_records([R2] * 50)


def test_batcher_sends_an_oversized_record_alone() -> None:
    big = FrameRecord(A, B, bytes(100))
    batcher = Batcher(max_payload=70)
    assert batcher.add(R1) == []
    assert batcher.add(big) == [encode_records([R1]), encode_records([big])]
    assert batcher.flush() is None


def test_batcher_default_limit_is_max_udp_payload() -> None:
    batcher = Batcher()
    assert batcher.max_payload == MAX_UDP_PAYLOAD
    fits = FrameRecord(A, B, bytes(MAX_UDP_PAYLOAD - PLAIN_PACKET_OVERHEAD - FRAME_OVERHEAD))
    assert batcher.add(fits) == [encode_records([fits])]


# --- special frames -----------------------------------------------------------------


def test_special_frame_builders() -> None:
    assert heartbeat_frame(0x1122334455667788) == bytes(14) + bytes.fromhex("1122334455667788")
    assert frag_test_frame() == bytes(60001)
    assert pmtu_probe_frame() == bytes(60000)
    assert mtu_test_frame(1438) == bytes(1452)
    with pytest.raises(LocalProtocolError):
        mtu_test_frame(65522)
    with pytest.raises(LocalProtocolError):
        heartbeat_frame(1 << 64)


def test_classify_special_by_length() -> None:
    assert classify_special(heartbeat_frame(42)) == Special("heartbeat", conn_uid=42)
    assert classify_special(frag_test_frame()) == Special("fragtest")
    assert classify_special(bytes(60000 - 1) + b"\x01" + bytes(1)) == Special(
        "fragtest", valid=False
    )
    assert classify_special(pmtu_probe_frame()) == Special("mtutest", mtu=60000 - 14)
    assert classify_special(mtu_test_frame(1414)) == Special("mtutest", mtu=1414)
    assert classify_special(bytes(14)) == Special("mtutest", mtu=0)


def test_ordinary_frames_are_not_special() -> None:
    assert classify_special(F1) is None
    assert classify_special(F2) is None
    assert classify_special(bytes(12) + b"\x08\x00" + bytes(8)) is None  # IPv4 ethertype
    assert classify_special(bytes(6) + b"\x02" + bytes(15)) is None  # nonzero src MAC
    assert classify_special(bytes(13)) is None  # too short for an Ethernet header


def test_overhead_df() -> None:
    assert overhead_df(False) == 62
    assert overhead_df(True) == 86
    assert 1500 - overhead_df(False) == 1438 and 1500 - overhead_df(True) == 1414
