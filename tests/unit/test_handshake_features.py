"""Feature map validation and construction (weave-wire §3.4, §3.7 steps 1-2)."""

from __future__ import annotations

import pytest

from weavenet.core.mesh.features import (
    HandshakeError,
    PeerNameCollision,
    RemoteFeatures,
    SelfConnection,
    build_features,
    parse_features,
)

OUR_NAME = 0xAABBCCDDEEFF
B_FEATURES = {
    "PeerNameFlavour": "mac",
    "Name": "02:00:00:00:00:01",
    "NickName": "hostB",
    "ShortID": "3218",
    "UID": "5076241583369484222",
    "ConnID": "15301506850948833828",
    "Trusted": "false",
}
WEAVER_FEATURES = {
    "PeerNameFlavour": "mac",
    "Name": "7e:21:4a:70:2f:45",
    "NickName": "host2",
    "ShortID": "1234",
    "UID": "8203402398471948123",
    "ConnID": "1298739127391273912",
    "Trusted": "false",
    "Overlays": "fastdp sleeve",
}


def with_(**changes: str | None) -> dict[str, str]:
    out = dict(B_FEATURES)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def test_parse_capture_features() -> None:
    assert parse_features(B_FEATURES, OUR_NAME) == RemoteFeatures(
        name=0x020000000001,
        nickname="hostB",
        uid=5076241583369484222,
        conn_id=15301506850948833828,
        short_id=3218,
        trusted=False,
        overlays=None,
    )


def test_parse_real_weaver_features() -> None:
    remote = parse_features(WEAVER_FEATURES, OUR_NAME)
    assert remote.name == 0x7E214A702F45
    assert remote.overlays == ["fastdp", "sleeve"]
    assert remote.short_id == 1234


def test_optional_features_absent() -> None:
    remote = parse_features(with_(ShortID=None, Trusted=None, Overlays=None), OUR_NAME)
    assert remote.short_id is None
    assert remote.trusted is False
    assert remote.overlays is None


def test_empty_nickname_and_empty_overlays_allowed() -> None:
    remote = parse_features(with_(NickName="", Overlays=""), OUR_NAME)
    assert remote.nickname == ""
    assert remote.overlays == []


@pytest.mark.parametrize("key", ["PeerNameFlavour", "Name", "NickName", "UID", "ConnID"])
def test_missing_required_field(key: str) -> None:
    with pytest.raises(HandshakeError, match=key):
        parse_features(with_(**{key: None}), OUR_NAME)


def test_flavour_mismatch() -> None:
    with pytest.raises(HandshakeError, match="Peer name flavour mismatch"):
        parse_features(with_(PeerNameFlavour="hash"), OUR_NAME)


@pytest.mark.parametrize("name", ["", "02:00:00:00:00", "zz:00:00:00:00:01", "1:2:3:4:5:6:7"])
def test_bad_name(name: str) -> None:
    with pytest.raises(HandshakeError, match="Name"):
        parse_features(with_(Name=name), OUR_NAME)


def test_abbreviated_name_accepted() -> None:
    assert parse_features(with_(Name="::1"), OUR_NAME).name == 1


@pytest.mark.parametrize("key", ["UID", "ConnID"])
@pytest.mark.parametrize(
    "text", ["", "-1", "+1", " 1", "1 ", "1_0", "0x10", "\u0661", str(1 << 64)]
)
def test_bad_uint64_fields(key: str, text: str) -> None:
    with pytest.raises(HandshakeError, match=key):
        parse_features(with_(**{key: text}), OUR_NAME)


def test_uint64_bounds() -> None:
    top = str((1 << 64) - 1)
    remote = parse_features(with_(UID=top, ConnID="0"), OUR_NAME)
    assert remote.uid == (1 << 64) - 1
    assert remote.conn_id == 0
    assert parse_features(with_(UID="007"), OUR_NAME).uid == 7


@pytest.mark.parametrize("text,value", [("0", 0), ("4095", 4095), ("0015", 15)])
def test_short_id_ok(text: str, value: int) -> None:
    assert parse_features(with_(ShortID=text), OUR_NAME).short_id == value


@pytest.mark.parametrize("text", ["4096", "-1", "", "abc", "65535"])
def test_short_id_bad(text: str) -> None:
    with pytest.raises(HandshakeError, match="ShortID"):
        parse_features(with_(ShortID=text), OUR_NAME)


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_trusted_true(text: str) -> None:
    assert parse_features(with_(Trusted=text), OUR_NAME).trusted is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_trusted_false(text: str) -> None:
    assert parse_features(with_(Trusted=text), OUR_NAME).trusted is False


@pytest.mark.parametrize("text", ["", "yes", "tRuE", "2", " true"])
def test_trusted_bad(text: str) -> None:
    with pytest.raises(HandshakeError, match="Trusted"):
        parse_features(with_(Trusted=text), OUR_NAME)


def test_overlays_split_on_single_spaces_like_go() -> None:
    remote = parse_features(with_(Overlays=" fastdp  sleeve\tawsvpc "), OUR_NAME)
    assert remote.overlays == ["fastdp", "sleeve\tawsvpc"]


def test_unknown_keys_ignored() -> None:
    assert parse_features(with_(PublicKey="abcd", Future="x"), OUR_NAME).nickname == "hostB"


def test_connection_to_ourself() -> None:
    ours = with_(Name="aa:bb:cc:dd:ee:ff", UID="42")
    with pytest.raises(SelfConnection, match="cannot connect to ourself"):
        parse_features(ours, OUR_NAME, our_uid=42)
    with pytest.raises(SelfConnection):
        parse_features(ours, OUR_NAME)


def test_peer_name_collision() -> None:
    with pytest.raises(PeerNameCollision) as info:
        parse_features(with_(Name="aa:bb:cc:dd:ee:ff", UID="43"), OUR_NAME, our_uid=42)
    assert isinstance(info.value, HandshakeError)


def test_build_features_matches_capture_key_set() -> None:
    built = build_features(
        0x020000000001, "hostB", 5076241583369484222, 15301506850948833828, 3218, False, None
    )
    assert built == B_FEATURES


def test_build_features_real_weaver_shape() -> None:
    built = build_features(
        0x7E214A702F45, "host2", 8203402398471948123, 1298739127391273912, 1234, False,
        ["fastdp", "sleeve"],
    )  # fmt: skip
    assert built == WEAVER_FEATURES


def test_build_features_optional_fields() -> None:
    built = build_features(1, "", 2, 3, None, True, [])
    assert built["Name"] == "00:00:00:00:00:01"
    assert built["Trusted"] == "true"
    assert built["Overlays"] == ""
    assert "ShortID" not in built


def test_build_then_parse_round_trip() -> None:
    built = build_features(0x7E214A702F45, "n", 9, 10, 4095, True, ["sleeve"])
    assert parse_features(built, OUR_NAME) == RemoteFeatures(
        name=0x7E214A702F45,
        nickname="n",
        uid=9,
        conn_id=10,
        short_id=4095,
        trusted=True,
        overlays=["sleeve"],
    )


def test_topology_to_all_is_ours_and_optional() -> None:
    """A Go weaver never sends it (its peers relay as mesh does); ours says "true"."""
    assert parse_features(WEAVER_FEATURES, OUR_NAME).topology_to_all is False
    assert parse_features(with_(TopologyToAll="true"), OUR_NAME).topology_to_all is True
    with pytest.raises(HandshakeError, match="invalid TopologyToAll feature 'maybe'"):
        parse_features(with_(TopologyToAll="maybe"), OUR_NAME)
    built = build_features(OUR_NAME, "a", 1, 2, None, False, None, topology_to_all=True)
    assert built["TopologyToAll"] == "true"
    assert "TopologyToAll" not in build_features(OUR_NAME, "a", 1, 2, None, False, None)
