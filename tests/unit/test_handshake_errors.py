"""Handshake failure modes and API misuse, one side at a time (weave-wire §3.2, §3.3)."""

from __future__ import annotations

import pytest

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.mesh.crypto import public_key_of
from weavenet.core.mesh.features import FEATURES_TYPE, HandshakeError
from weavenet.core.mesh.handshake import Handshake, HandshakeConfig
from weavenet.core.wire.framing import FrameTooLarge, encode_frame
from weavenet.core.wire.gob import encode_value

A_FEATURES = {"PeerNameFlavour": "mac", "Name": "aa:bb:cc:dd:ee:ff", "NickName": "hostA"}
A_FEATURES_FRAME = encode_frame(encode_value(FEATURES_TYPE, A_FEATURES))
B_TO_A = [b"weave\x01\x02\x00", A_FEATURES_FRAME]
PRIV_B = bytes.fromhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")


def config(outbound: bool, **kw: object) -> HandshakeConfig:
    return HandshakeConfig(features=A_FEATURES, outbound=outbound, **kw)  # type: ignore[arg-type]


def test_password_side_detects_unencrypted_peer() -> None:
    hs = Handshake(config(True, password=b"pw"))
    with pytest.raises(HandshakeError, match="password specified, but peer requested an unenc"):
        hs.receive_data(b"weave\x01\x02\x00")


@pytest.mark.parametrize("flag", [2, 0xFF])
def test_bad_encryption_flag(flag: int) -> None:
    hs = Handshake(config(False))
    with pytest.raises(HandshakeError, match=r"^Bad encryption flag"):
        hs.receive_data(b"weave\x01\x02" + bytes([flag]))


def test_low_order_public_key_is_rejected() -> None:
    hs = Handshake(config(False, password=b"pw"))
    with pytest.raises(HandshakeError):
        hs.receive_data(b"weave\x02\x02\x01" + bytes(32))


def test_version_1_only_is_not_implemented() -> None:
    hs = Handshake(config(True, min_version=1, max_version=2))
    with pytest.raises(HandshakeError, match="not supported"):
        hs.receive_data(b"weave\x01\x01")


def test_newer_peer_negotiates_down_to_2() -> None:
    hs = Handshake(config(True))
    hs.receive_data(b"weave\x01\x07")
    assert hs.stage == "intro"
    hs.receive_data(b"\x00" + encode_frame(encode_value(FEATURES_TYPE, A_FEATURES)))
    assert hs.result.version == 2


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"weavx\x01\x02", b"WEAVE\x01\x02"])
def test_not_a_weave_peer(data: bytes) -> None:
    hs = Handshake(config(False))
    with pytest.raises(HandshakeError, match="not a weave peer"):
        hs.receive_data(data)


def test_bad_header_detected_from_first_wrong_byte() -> None:
    hs = Handshake(config(False))
    hs.receive_data(b"we")
    with pytest.raises(HandshakeError):
        hs.receive_data(b"b")


def test_oversized_features_frame() -> None:
    hs = Handshake(config(False))
    with pytest.raises(FrameTooLarge):
        hs.receive_data(b"weave\x02\x02\x00" + (10 * 1024 * 1024 + 1).to_bytes(4, "big"))


def test_garbage_features_frame_is_remote_error() -> None:
    hs = Handshake(config(False))
    with pytest.raises(RemoteProtocolError):
        hs.receive_data(b"weave\x02\x02\x00" + encode_frame(b"\x03\xff\xff\xff"))


@pytest.mark.parametrize("cut", [0, 3, 7, 8, 12, 40])
def test_truncated_input_then_eof(cut: int) -> None:
    stream = b"".join(B_TO_A)
    hs = Handshake(config(False))
    if cut:
        hs.receive_data(stream[:cut])
    with pytest.raises(HandshakeError, match="connection closed during handshake"):
        hs.receive_data(b"")


def test_stage_progression_and_misuse() -> None:
    hs = Handshake(config(True))
    with pytest.raises(LocalProtocolError):
        _ = hs.result
    hs.receive_data(b"weave\x02")
    assert hs.stage == "header" and not hs.done
    hs.receive_data(b"\x02")
    assert hs.stage == "intro"
    hs.receive_data(b"\x00" + A_FEATURES_FRAME)
    assert hs.stage == "done" and hs.done
    with pytest.raises(LocalProtocolError):
        hs.receive_data(b"\x00")


def test_failed_handshake_cannot_be_fed_again() -> None:
    hs = Handshake(config(True))
    with pytest.raises(HandshakeError):
        hs.receive_data(b"xxxxxxx")
    with pytest.raises(LocalProtocolError):
        hs.receive_data(b"weave\x02\x02")


@pytest.mark.parametrize(
    "kw",
    [
        {"min_version": 0},
        {"min_version": 2, "max_version": 1},
        {"max_version": 3},
        {"password": b"pw", "keypair": (b"short", b"short")},
    ],
)
def test_invalid_config(kw: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        config(True, **kw)


def test_keypair_only_used_when_encrypted() -> None:
    assert Handshake(config(True)).public_key is None
    hs = Handshake(config(True, password=b"pw", keypair=(PRIV_B, public_key_of(PRIV_B))))
    assert hs.public_key == public_key_of(PRIV_B)
    one = Handshake(config(True, password=b"pw")).public_key
    two = Handshake(config(True, password=b"pw")).public_key
    assert one is not None and two is not None
    assert len(one) == 32 and one != two
