"""The feature map of the mesh handshake (weave-wire §3.4, §3.7): the gob
``map[string]string`` each side sends as its first message, decoded, validated into
:class:`RemoteFeatures` (``mesh:connection.go:parseFeatures``) and built from our side
(``makeFeatures``). The handshake's errors live here too: the checks raise them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from weavenet.core.errors import RemoteProtocolError
from weavenet.core.peername import PEER_NAME_FLAVOUR, format_peer_name, parse_peer_name
from weavenet.core.wire.gob import STRING, Decoder, Map

FEATURES_TYPE = Map(STRING, STRING)


class HandshakeError(RemoteProtocolError):
    """The peer's handshake was unacceptable; close the connection."""


class SelfConnection(HandshakeError):
    """We connected to ourselves ("cannot connect to ourself"); never retry."""


class PeerNameCollision(HandshakeError):
    """Another peer uses our name with a different UID; never retry that address."""


def decode_features(body: bytes) -> dict[str, str]:
    """Decode the gob(map[string]string) features message (trailing data ignored)."""
    value = Decoder(body).decode(FEATURES_TYPE)
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise HandshakeError("features message is not a map[string]string")
    return dict(value)


# -- feature map (§3.4, §3.7) ------------------------------------------------

_REQUIRED_FEATURES = ("PeerNameFlavour", "Name", "NickName", "UID", "ConnID")
_DIGITS = re.compile(r"[0-9]+")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
SHORT_ID_BITS = 12
# Ours, not Go's (Go ignores keys it does not know): "I send each version of my own entry
# to every connection I have", so whoever gets it from me need not pass it on to them
# (gossip_routing.GossipRouter._relay_first_hand).
TOPOLOGY_TO_ALL = "TopologyToAll"


class RemoteFeatures(msgspec.Struct, frozen=True):
    """The validated feature map of the remote peer."""

    name: int
    nickname: str
    uid: int
    conn_id: int
    short_id: int | None
    trusted: bool
    overlays: list[str] | None
    topology_to_all: bool = False  # TOPOLOGY_TO_ALL


def _parse_uint(key: str, text: str, bits: int) -> int:
    """Go ``strconv.ParseUint(text, 10, bits)``."""
    if _DIGITS.fullmatch(text) is None:
        raise HandshakeError(f"invalid {key} feature {text!r}: not a decimal unsigned integer")
    value = int(text)
    if value >= 1 << bits:
        raise HandshakeError(f"invalid {key} feature {text!r}: out of range for {bits} bits")
    return value


def _split_overlays(text: str) -> list[str]:
    """Go ``strings.Split(text, " ")``; empty names (never an overlay) are dropped."""
    return [name for name in text.split(" ") if name]


def _parse_bool(key: str, text: str) -> bool:
    """Go ``strconv.ParseBool``."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise HandshakeError(f"invalid {key} feature {text!r}: not a boolean")


def parse_features(
    features: Mapping[str, str], our_name: int, our_uid: int | None = None
) -> RemoteFeatures:
    """Validate the remote feature map (``mesh:connection.go:parseFeatures``).

    Also applies the identity checks of §3.7 step 2 when the remote claims our
    name: :class:`SelfConnection` if the UIDs match (or ``our_uid`` is not
    given), else :class:`PeerNameCollision`.
    """
    for key in _REQUIRED_FEATURES:
        if key not in features:
            raise HandshakeError(f"field {key} is missing")
    if features["PeerNameFlavour"] != PEER_NAME_FLAVOUR:
        raise HandshakeError(
            f"Peer name flavour mismatch (ours: {PEER_NAME_FLAVOUR!r}, "
            f"theirs: {features['PeerNameFlavour']!r})"
        )
    try:
        name = parse_peer_name(features["Name"])
    except ValueError as exc:
        raise HandshakeError(f"invalid Name feature: {exc}") from exc
    short_text = features.get("ShortID")
    overlays = features.get("Overlays")
    remote = RemoteFeatures(
        name=name,
        nickname=features["NickName"],
        uid=_parse_uint("UID", features["UID"], 64),
        conn_id=_parse_uint("ConnID", features["ConnID"], 64),
        short_id=None if short_text is None else _parse_uint("ShortID", short_text, SHORT_ID_BITS),
        trusted=_parse_bool("Trusted", features.get("Trusted", "false")),
        overlays=None if overlays is None else _split_overlays(overlays),
        topology_to_all=_parse_bool(TOPOLOGY_TO_ALL, features.get(TOPOLOGY_TO_ALL, "false")),
    )
    _check_identity(remote, our_name, our_uid)
    return remote


def _check_identity(remote: RemoteFeatures, our_name: int, our_uid: int | None) -> None:
    if remote.name != our_name:
        return
    if our_uid is None or remote.uid == our_uid:
        raise SelfConnection("cannot connect to ourself")
    raise PeerNameCollision(
        f"local {format_peer_name(our_name)} uid {our_uid} collides with remote uid {remote.uid}"
    )


def build_features(
    name: int,
    nickname: str,
    uid: int,
    conn_id: int,
    short_id: int | None,
    trusted: bool,
    overlays: list[str] | None,
    topology_to_all: bool = False,
) -> dict[str, str]:
    """Our feature map (``mesh:connection.go:makeFeatures`` + overlay switch)."""
    features = {
        "PeerNameFlavour": PEER_NAME_FLAVOUR,
        "Name": format_peer_name(name),
        "NickName": nickname,
        "UID": str(uid),
        "ConnID": str(conn_id),
        "Trusted": "true" if trusted else "false",
    }
    if short_id is not None:
        features["ShortID"] = str(short_id)
    if overlays is not None:
        features["Overlays"] = " ".join(overlays)
    if topology_to_all:
        features[TOPOLOGY_TO_ALL] = "true"
    return features
