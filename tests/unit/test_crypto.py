"""Session key and TCP secretbox sealing (weave-wire §3.5, vectors A.3)."""

from __future__ import annotations

import nacl.public
import pytest

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.mesh.crypto import (
    DecryptError,
    MessageCodec,
    TcpOpener,
    TcpSealer,
    derive_session_key,
    generate_keypair,
    public_key_of,
    tcp_nonce,
)
from weavenet.core.wire.framing import MAX_TCP_MSG_SIZE, FrameTooLarge, encode_frame

PRIV_A = bytes.fromhex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20")
PUB_A = bytes.fromhex("07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c")
PRIV_B = bytes.fromhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
PUB_B = bytes.fromhex("493e82fc74464a59268817623d2053c5eb8e2cc4a988b4fee179ec6b010d531d")
PASSWORD = b"s3cret"
SESSION_KEY = bytes.fromhex("28db2f6c9b6a6b6d197e6a88ea60a996f47d38f8de7f5fbeb2311e182ede683e")

OUT_HEARTBEAT = bytes.fromhex("00000011c959b16b73ea4c1736088a68ac3e8e5cee")
OUT_HELLO = bytes.fromhex("0000001576f348387bcff2c6e6488a5d5c3a5952143c25d8a4")
IN_HEARTBEAT = bytes.fromhex("000000112067689973bbff39d06680f5ab61bd1d2c")


def test_public_keys_of_vector_private_keys() -> None:
    assert public_key_of(PRIV_A) == PUB_A
    assert public_key_of(PRIV_B) == PUB_B


def test_session_key_vector_from_both_sides() -> None:
    assert derive_session_key(PUB_B, PRIV_A, PASSWORD) == SESSION_KEY
    assert derive_session_key(PUB_A, PRIV_B, PASSWORD) == SESSION_KEY


def test_session_key_depends_on_password() -> None:
    assert derive_session_key(PUB_B, PRIV_A, b"other") != SESSION_KEY


def test_session_key_rejects_bad_remote_keys() -> None:
    with pytest.raises(RemoteProtocolError):
        derive_session_key(PUB_B[:31], PRIV_A, PASSWORD)
    with pytest.raises(RemoteProtocolError):  # low-order point: all zeros
        derive_session_key(bytes(32), PRIV_A, PASSWORD)
    with pytest.raises(LocalProtocolError):
        derive_session_key(PUB_B, PRIV_A[:5], PASSWORD)


def test_tcp_nonce_layout() -> None:
    assert tcp_nonce(True, 0) == bytes.fromhex("c0" + "00" * 23)
    assert tcp_nonce(True, 1) == bytes.fromhex("c0" + "00" * 22 + "01")
    assert tcp_nonce(False, 0) == bytes.fromhex("40" + "00" * 23)
    assert tcp_nonce(False, 0x0102030405060708) == bytes.fromhex(
        "40" + "00" * 15 + "0102030405060708"
    )
    with pytest.raises(LocalProtocolError):
        tcp_nonce(True, -1)
    with pytest.raises(LocalProtocolError):
        tcp_nonce(True, 1 << 64)


def test_outbound_sealer_vectors() -> None:
    sealer = TcpSealer(SESSION_KEY, outbound=True)
    assert encode_frame(sealer.seal(b"\x00")) == OUT_HEARTBEAT
    assert encode_frame(sealer.seal(b"hello")) == OUT_HELLO
    assert sealer.seq == 2


def test_inbound_sealer_vector() -> None:
    assert encode_frame(TcpSealer(SESSION_KEY, outbound=False).seal(b"\x00")) == IN_HEARTBEAT


def test_opener_opens_vectors() -> None:
    from_outbound = TcpOpener(SESSION_KEY, outbound_remote=True)
    assert from_outbound.open(OUT_HEARTBEAT[4:]) == b"\x00"
    assert from_outbound.open(OUT_HELLO[4:]) == b"hello"
    from_inbound = TcpOpener(SESSION_KEY, outbound_remote=False)
    assert from_inbound.open(IN_HEARTBEAT[4:]) == b"\x00"


def test_opener_failure_does_not_advance_sequence() -> None:
    opener = TcpOpener(SESSION_KEY, outbound_remote=True)
    with pytest.raises(DecryptError, match="Unable to decrypt TCP msg"):
        opener.open(OUT_HELLO[4:])  # seq 1 box while expecting seq 0
    assert opener.seq == 0
    assert opener.open(OUT_HEARTBEAT[4:]) == b"\x00"
    assert opener.seq == 1


@pytest.mark.parametrize(
    "box",
    [
        b"",
        b"\x00" * 15,
        bytes([OUT_HEARTBEAT[4] ^ 1]) + OUT_HEARTBEAT[5:],  # flipped MAC bit
        OUT_HEARTBEAT[4:-1] + bytes([OUT_HEARTBEAT[-1] ^ 0x80]),  # flipped ciphertext bit
    ],
)
def test_opener_rejects_tampered_or_short_boxes(box: bytes) -> None:
    with pytest.raises(DecryptError) as info:
        TcpOpener(SESSION_KEY, outbound_remote=True).open(box)
    assert isinstance(info.value, RemoteProtocolError)


def test_opener_rejects_wrong_direction() -> None:
    with pytest.raises(DecryptError):
        TcpOpener(SESSION_KEY, outbound_remote=False).open(OUT_HEARTBEAT[4:])


def test_bad_key_length_is_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        TcpSealer(b"short", outbound=True)
    with pytest.raises(LocalProtocolError):
        TcpOpener(b"short", outbound_remote=True)


def test_generate_keypair_is_a_matching_curve25519_pair() -> None:
    private, public = generate_keypair()
    assert len(private) == len(public) == 32
    assert bytes(nacl.public.PrivateKey(private).public_key) == public
    assert generate_keypair()[0] != private


def test_codec_unencrypted_is_plain_framing() -> None:
    codec = MessageCodec(None, outbound=True)
    assert not codec.encrypted
    assert codec.encode(b"\x00") == bytes.fromhex("0000000100")
    assert codec.feed(bytes.fromhex("00000001")) == []
    assert codec.buffered == 0
    assert codec.feed(b"\x07" + bytes.fromhex("0000")) == [b"\x07"]
    assert codec.buffered == 2


def test_codec_encrypted_matches_vectors_both_directions() -> None:
    outbound = MessageCodec(SESSION_KEY, outbound=True)
    assert outbound.encode(b"\x00") + outbound.encode(b"hello") == OUT_HEARTBEAT + OUT_HELLO
    inbound = MessageCodec(SESSION_KEY, outbound=False)
    assert inbound.feed(OUT_HEARTBEAT + OUT_HELLO) == [b"\x00", b"hello"]
    assert inbound.encode(b"\x00") == IN_HEARTBEAT
    assert outbound.feed(IN_HEARTBEAT) == [b"\x00"]


def test_codec_initial_sequence_numbers() -> None:
    sender = MessageCodec(SESSION_KEY, outbound=True, send_seq=1)
    assert sender.encode(b"hello") == OUT_HELLO
    receiver = MessageCodec(SESSION_KEY, outbound=False, recv_seq=1)
    assert receiver.feed(OUT_HELLO) == [b"hello"]
    with pytest.raises(DecryptError):
        MessageCodec(SESSION_KEY, outbound=False, recv_seq=1).feed(OUT_HEARTBEAT)


def test_codec_round_trip_byte_at_a_time() -> None:
    a = MessageCodec(SESSION_KEY, outbound=True, send_seq=1, recv_seq=1)
    b = MessageCodec(SESSION_KEY, outbound=False, send_seq=1, recv_seq=1)
    stream = b"".join(a.encode(m) for m in (b"", b"x", bytes(range(256))))
    got: list[bytes] = []
    for i in range(len(stream)):
        got += b.feed(stream[i : i + 1])
    assert got == [b"", b"x", bytes(range(256))]
    assert a.feed(b.encode(b"back")) == [b"back"]


def test_codec_size_limits() -> None:
    with pytest.raises(LocalProtocolError):
        MessageCodec(SESSION_KEY, outbound=True).encode(bytes(MAX_TCP_MSG_SIZE - 15))
    with pytest.raises(FrameTooLarge):
        MessageCodec(None, outbound=True).feed(bytes.fromhex("ffffffff"))
