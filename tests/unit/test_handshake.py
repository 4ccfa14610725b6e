"""The mesh TCP handshake: header, V2 intro, features (weave-wire §3, A.1-A.3)."""

from __future__ import annotations

import pytest

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.mesh.crypto import DecryptError, MessageCodec, public_key_of
from weavenet.core.mesh.features import (
    FEATURES_TYPE,
    HandshakeError,
    build_features,
    decode_features,
)
from weavenet.core.mesh.handshake import Handshake, HandshakeConfig, HandshakeResult, encode_header
from weavenet.core.wire.framing import encode_frame
from weavenet.core.wire.gob import STRING, encode_value

# -- vectors (Appendix A) ------------------------------------------------------

HEADER_1_2 = bytes.fromhex("77656176650102")
FEATURES_NAME_ONLY = bytes.fromhex(
    "0eff81040102ff8200010c010c00001bff820001044e616d651161613a62623a63633a64643a65653a6666"
)
FEATURES_EMPTY = bytes.fromhex("0eff81040102ff8200010c010c000004ff820000")

A_FEATURES_FRAME = bytes.fromhex(
    "0000009b0eff81040102ff8200010c010c0000ff8aff820007035549441235393232353131373935"
    "323030393939353406436f6e6e494414313630313533363037333532333835303035333807547275"
    "737465640566616c73650f506565724e616d65466c61766f7572036d6163044e616d651161613a62"
    "623a63633a64643a65653a6666084e69636b4e616d6505686f7374410753686f72744944023135"
)
B_FEATURES_FRAME = bytes.fromhex(
    "0000009e0eff81040102ff8200010c010c0000ff8dff8200070f506565724e616d65466c61766f75"
    "72036d6163044e616d651130323a30303a30303a30303a30303a3031084e69636b4e616d6505686f"
    "7374420753686f72744944043332313803554944133530373632343135383333363934383432323206"
    "436f6e6e494414313533303135303638353039343838333338323807547275737465640566616c7365"
)
A_TOPOLOGY_FRAME = bytes.fromhex(
    "00000158040b0c0008746f706f6c6f6779090600faaabbccddeefffe013e0a00fe013962ff830301"
    "010b7065657253756d6d61727901ff8400010601084e616d6542797465010a0001084e69636b4e61"
    "6d65010c000103554944010600010756657273696f6e010600010753686f72744944010600010a48"
    "617353686f72744944010200000022ff8401060200000000010105686f73744201f846726ed332cd"
    "f7be02fe0c920101000dff87020102ff880001ff8600005bff8503010111636f6e6e656374696f6e"
    "53756d6d61727901ff8600010401084e616d6542797465010a00010d52656d6f7465544350416464"
    "72010c0001084f7574626f756e64010200010b45737461626c6973686564010200000004ff880000"
    "22ff840106aabbccddeeff0105686f73744101f80838194f551a06720102010f01010020ff880001"
    "0106020000000001010f3132372e302e302e313a3532333438020100"
)
# Go's map iteration order in the capture; our encoder keeps insertion order.
A_FEATURES = {
    "UID": "592251179520099954",
    "ConnID": "16015360735238500538",
    "Trusted": "false",
    "PeerNameFlavour": "mac",
    "Name": "aa:bb:cc:dd:ee:ff",
    "NickName": "hostA",
    "ShortID": "15",
}
B_FEATURES = {
    "PeerNameFlavour": "mac",
    "Name": "02:00:00:00:00:01",
    "NickName": "hostB",
    "ShortID": "3218",
    "UID": "5076241583369484222",
    "ConnID": "15301506850948833828",
    "Trusted": "false",
}
# Segments as read by the proxy in A.2.
A_TO_B = [HEADER_1_2, b"\x00", A_FEATURES_FRAME, A_TOPOLOGY_FRAME]
B_TO_A = [bytes.fromhex("7765617665010200"), B_FEATURES_FRAME]

PRIV_A = bytes.fromhex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20")
PRIV_B = bytes.fromhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
SESSION_KEY = bytes.fromhex("28db2f6c9b6a6b6d197e6a88ea60a996f47d38f8de7f5fbeb2311e182ede683e")


def config(outbound: bool, **kw: object) -> HandshakeConfig:
    features = kw.pop("features", B_FEATURES if outbound else A_FEATURES)
    return HandshakeConfig(features=features, outbound=outbound, **kw)  # type: ignore[arg-type]


# -- a pair of handshakes wired back to back ----------------------------------


class ConnectionPair:
    """Shuttle bytes between an outbound and an inbound Handshake.

    A side that raises stops receiving; its error is kept in ``errors`` (keyed
    "outbound"/"inbound") so tests can check what each end saw.
    """

    def __init__(self, out_cfg: HandshakeConfig, in_cfg: HandshakeConfig) -> None:
        self.outbound = Handshake(out_cfg)
        self.inbound = Handshake(in_cfg)
        self.errors: dict[str, RemoteProtocolError] = {}

    def run(self, chunk: int | None = None) -> None:
        """Exchange until neither side has anything more to send."""
        sides = (
            ("inbound", self.outbound, self.inbound),
            ("outbound", self.inbound, self.outbound),
        )
        progress = True
        while progress:
            progress = False
            for name, src, dst in sides:
                data = src.data_to_send()
                if not data or dst.done or name in self.errors:
                    continue
                progress = True
                step = chunk or len(data)
                try:
                    for i in range(0, len(data), step):
                        dst.receive_data(data[i : i + step])
                except RemoteProtocolError as exc:
                    self.errors[name] = exc

    def results(self) -> tuple[HandshakeResult, HandshakeResult]:
        assert not self.errors, self.errors
        return self.outbound.result, self.inbound.result


def assert_codecs_talk(a: MessageCodec, b: MessageCodec) -> None:
    assert b.feed(a.encode(b"\x00") + a.encode(b"\x04gossip")) == [b"\x00", b"\x04gossip"]
    assert a.feed(b.encode(b"\x07ctl")) == [b"\x07ctl"]


# -- A.1 -----------------------------------------------------------------------


def test_header_vector() -> None:
    assert encode_header(1, 2) == HEADER_1_2
    assert encode_header(2, 2) == b"weave\x02\x02"


def test_features_gob_vectors() -> None:
    assert encode_value(FEATURES_TYPE, {"Name": "aa:bb:cc:dd:ee:ff"}) == FEATURES_NAME_ONLY
    assert encode_value(FEATURES_TYPE, {}) == FEATURES_EMPTY
    assert decode_features(FEATURES_NAME_ONLY) == {"Name": "aa:bb:cc:dd:ee:ff"}
    assert decode_features(FEATURES_EMPTY) == {}


def test_features_message_of_wrong_type_is_rejected() -> None:
    with pytest.raises(RemoteProtocolError):
        decode_features(encode_value(STRING, "not a map"))
    with pytest.raises(RemoteProtocolError):
        decode_features(b"")


# -- A.2: the live capture -------------------------------------------------------


def test_capture_inbound_side_a() -> None:
    hs = Handshake(config(False, min_version=1, max_version=2))
    assert hs.stage == "header"
    assert hs.data_to_send() == HEADER_1_2
    hs.receive_data(B_TO_A[0])
    assert hs.stage == "intro"
    # Same features in Go's order: our whole intro equals A's captured bytes.
    assert hs.data_to_send() == b"\x00" + A_FEATURES_FRAME
    hs.receive_data(B_TO_A[1])
    assert hs.done and hs.stage == "done"
    res = hs.result
    assert res.version == 2
    assert res.remote_features == B_FEATURES
    assert res.session_key is None
    assert res.leftover == []
    assert hs.data_to_send() == b""


def test_capture_outbound_side_b() -> None:
    hs = Handshake(config(True, min_version=1, max_version=2))
    sent = hs.data_to_send()
    assert sent == HEADER_1_2
    for segment in A_TO_B[:3]:
        hs.receive_data(segment)
        sent += hs.data_to_send()
    # Same features in Go's order: our whole output equals B's captured bytes.
    assert sent == B_TO_A[0] + B_FEATURES_FRAME
    res = hs.result
    assert res.version == 2
    assert res.remote_features == A_FEATURES
    assert res.session_key is None
    assert res.leftover == []
    assert res.codec.feed(A_TO_B[3]) == [A_TOPOLOGY_FRAME[4:]]


def test_capture_outbound_side_b_single_chunk_has_leftover() -> None:
    hs = Handshake(config(True))
    hs.receive_data(b"".join(A_TO_B))
    assert hs.result.remote_features == A_FEATURES
    assert hs.result.leftover == [A_TOPOLOGY_FRAME[4:]]
    assert hs.result.leftover[0][0] == 4  # ProtocolGossip


@pytest.mark.parametrize("outbound", [True, False])
def test_capture_in_one_chunk_and_byte_at_a_time(outbound: bool) -> None:
    stream = b"".join(A_TO_B if outbound else B_TO_A)
    expected = A_FEATURES if outbound else B_FEATURES
    whole = Handshake(config(outbound))
    whole.receive_data(stream)
    assert whole.result.remote_features == expected
    slow = Handshake(config(outbound))
    for i in range(len(stream)):
        if slow.done:
            slow.result.codec.feed(stream[i : i + 1])
        else:
            slow.receive_data(stream[i : i + 1])
    assert slow.result.remote_features == expected
    assert slow.data_to_send() == whole.data_to_send()


def test_default_config_sends_version_2_only() -> None:
    hs = Handshake(config(True))
    assert hs.data_to_send() == b"weave\x02\x02"


def test_leftover_then_codec_continues_stream() -> None:
    later = encode_frame(b"\x00") + encode_frame(b"\x07xy")
    hs = Handshake(config(True))
    hs.receive_data(b"".join(A_TO_B) + later[:6])
    res = hs.result
    assert res.leftover == [A_TOPOLOGY_FRAME[4:], b"\x00"]
    assert res.codec.feed(later[6:]) == [b"\x07xy"]


# -- A.3 / encrypted handshakes ---------------------------------------------------


def test_encrypted_pair_with_vector_keys() -> None:
    pair = ConnectionPair(
        config(True, password=b"s3cret", keypair=(PRIV_B, public_key_of(PRIV_B))),
        config(False, password=b"s3cret", keypair=(PRIV_A, public_key_of(PRIV_A))),
    )
    first = pair.outbound.data_to_send()
    assert first == b"weave\x02\x02"
    pair.inbound.receive_data(first)
    intro = pair.inbound.data_to_send()
    assert intro == b"weave\x02\x02\x01" + public_key_of(PRIV_A)  # 40 bytes like A.2
    pair.outbound.receive_data(intro)
    b_intro = pair.outbound.data_to_send()
    assert b_intro[:33] == b"\x01" + public_key_of(PRIV_B)
    length = int.from_bytes(b_intro[33:37], "big")
    assert length == len(b_intro) - 37 == len(encode_value(FEATURES_TYPE, B_FEATURES)) + 16
    pair.inbound.receive_data(b_intro)
    pair.run()
    out_res, in_res = pair.results()
    assert out_res.session_key == in_res.session_key == SESSION_KEY
    assert out_res.remote_features == A_FEATURES
    assert in_res.remote_features == B_FEATURES
    # Features were seq 0; the codec continues with seq 1 in both directions.
    hello = out_res.codec.encode(b"hello")
    assert hello == bytes.fromhex("0000001576f348387bcff2c6e6488a5d5c3a5952143c25d8a4")
    assert in_res.codec.feed(hello) == [b"hello"]
    assert_codecs_talk(in_res.codec, out_res.codec)


@pytest.mark.parametrize("chunk", [None, 1, 5])
@pytest.mark.parametrize("password", [None, b"pw"])
def test_pair_completes(password: bytes | None, chunk: int | None) -> None:
    pair = ConnectionPair(config(True, password=password), config(False, password=password))
    pair.run(chunk)
    out_res, in_res = pair.results()
    assert out_res.version == in_res.version == 2
    assert out_res.remote_features == A_FEATURES
    assert in_res.remote_features == B_FEATURES
    assert out_res.session_key == in_res.session_key
    assert (out_res.session_key is None) == (password is None)
    assert out_res.leftover == in_res.leftover == []
    assert_codecs_talk(out_res.codec, in_res.codec)


def test_empty_password_means_unencrypted() -> None:
    pair = ConnectionPair(config(True, password=b""), config(False))
    pair.run()
    assert pair.outbound.result.session_key is None


def test_mismatched_passwords_fail_to_decrypt_features() -> None:
    pair = ConnectionPair(config(True, password=b"one"), config(False, password=b"two"))
    pair.run()
    for side in ("outbound", "inbound"):
        assert isinstance(pair.errors[side], DecryptError)
        assert str(pair.errors[side]) == (
            "Unable to decrypt TCP msg: check that every peer uses the same --password"
        )
    assert not pair.outbound.done and not pair.inbound.done


def test_password_vs_no_password_error_texts() -> None:
    no_pw = "no password specificed, but peer requested an encrypted connection"
    pw = "password specified, but peer requested an unencrypted connection"
    pair = ConnectionPair(config(True, password=b"pw"), config(False))
    pair.run()
    assert isinstance(pair.errors["inbound"], HandshakeError)
    assert str(pair.errors["inbound"]) == no_pw
    assert str(pair.errors["outbound"]) == pw
    pair = ConnectionPair(config(True), config(False, password=b"pw"))
    pair.run()
    assert str(pair.errors["outbound"]) == no_pw
    assert str(pair.errors["inbound"]) == pw


# -- header problems ---------------------------------------------------------------


def test_version_mismatch() -> None:
    pair = ConnectionPair(config(True), config(False, min_version=1, max_version=1))
    pair.run()
    err = pair.errors["outbound"]
    assert isinstance(err, HandshakeError)
    assert str(err) == "protocol version mismatch: ours 2..2, theirs 1..1"
    assert str(pair.errors["inbound"]) == "protocol version mismatch: ours 1..1, theirs 2..2"
    assert pair.outbound.stage == pair.inbound.stage == "header"


def test_built_features_round_trip_through_pair() -> None:
    ours = build_features(0x020000000001, "hostB", 1, 2, 3218, False, ["fastdp", "sleeve"])
    pair = ConnectionPair(config(True, features=ours), config(False))
    pair.run()
    assert pair.inbound.result.remote_features == ours
