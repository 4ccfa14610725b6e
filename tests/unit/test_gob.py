"""Gob codec against every gob vector of weave-wire.md Appendix A (and §11.2)."""

from __future__ import annotations

import msgspec.structs
import pytest

from weavenet.core.peername import parse_peer_name
from weavenet.core.wire.gob import (
    BOOL,
    BYTES,
    FLOAT,
    INT,
    STRING,
    UINT,
    Decoder,
    Encoder,
    Map,
    Slice,
    Struct,
    decode_value,
    encode_value,
)
from weavenet.core.wire.gob_decode import Wire, WMap, WSlice, WStruct
from weavenet.core.wire.gob_types import put_int, put_uint


def h(text: str) -> bytes:
    """Hex from the spec: whitespace and ``|`` separators ignored."""
    return bytes.fromhex("".join(text.replace("|", " ").split()))


PEER_A = parse_peer_name("aa:bb:cc:dd:ee:ff")
PEER_B = parse_peer_name("02:00:00:00:00:01")
FEATURES = Map(STRING, STRING)
PEER_SUMMARY = Struct(
    "peerSummary",
    (
        ("NameByte", BYTES),
        ("NickName", STRING),
        ("UID", UINT),
        ("Version", UINT),
        ("ShortID", UINT),
        ("HasShortID", BOOL),
    ),
)
CONNECTION_SUMMARY = Struct(
    "connectionSummary",
    (("NameByte", BYTES), ("RemoteTCPAddr", STRING), ("Outbound", BOOL), ("Established", BOOL)),
)
CONNECTIONS = Slice(CONNECTION_SUMMARY)

# --- IPAM types, shaped and named exactly as Go's (weave ipam / paxos / ring) --------
NODE_ID = Struct("", (("Name", UINT), ("UID", UINT)))  # map key: Go sends no name
PROPOSAL_ID = Struct("ProposalID", (("Round", UINT), ("Proposer", NODE_ID)))
ACCEPTED_VALUE = Struct(
    "AcceptedValue", (("Value", Slice(UINT, name="Value")), ("Origin", PROPOSAL_ID))
)
NODE_CLAIMS = Struct(
    "", (("Promise", PROPOSAL_ID), ("Accepted", PROPOSAL_ID), ("AcceptedVal", ACCEPTED_VALUE))
)
ENTRY = Struct("", (("Token", UINT), ("Peer", UINT), ("Version", UINT), ("Free", UINT)))
RING = Struct(
    "Ring",
    (
        ("Start", UINT),
        ("End", UINT),
        ("Peer", UINT),
        ("Entries", Slice(ENTRY, name="entries")),
        ("Seeds", Slice(UINT, name="[]mesh.PeerName")),
    ),
)
GOSSIP_STATE = Struct(
    "gossipState",
    (
        ("Now", INT),
        ("Nicknames", Map(UINT, STRING, name="map[mesh.PeerName]string")),
        ("Paxos", Map(NODE_ID, NODE_CLAIMS, name="GossipState")),
        ("Ring", RING),
    ),
)
RANGE = Struct("Range", (("Start", UINT), ("End", UINT)))

# --- DNS -----------------------------------------------------------------------------
DNS_ENTRY = Struct(
    "Entry",
    (
        ("ContainerID", STRING),
        ("Origin", UINT),
        ("Addr", UINT),
        ("Hostname", STRING),
        ("Version", INT),
        ("Tombstone", INT),
    ),
)
GOSSIP_DATA = Struct("GossipData", (("Timestamp", INT), ("Entries", Slice(DNS_ENTRY, "Entries"))))


# ===================================================================================
# §11.2 primitives and A.1
# ===================================================================================

UINT_VECTORS = [
    (0, "00"),
    (127, "7f"),
    (128, "ff80"),
    (256, "fe0100"),
    (0xAABBCCDDEEFF, "faaabbccddeeff"),
    ((1 << 64) - 1, "f8ffffffffffffffff"),
]
INT_VECTORS = [(0, "00"), (3, "06"), (-1, "01"), (-65, "ff81"), (1600000000, "fcbebc2000")]


@pytest.mark.parametrize(("value", "hexed"), UINT_VECTORS)
def test_uint_encoding(value: int, hexed: str) -> None:
    out = bytearray()
    put_uint(out, value)
    assert out.hex() == hexed
    # As a top-level singleton: length, type id 3 (int-encoded 06), delta 00, value.
    stream = bytes([2 + len(out), 0x06, 0x00]) + out
    assert encode_value(UINT, value) == stream
    assert decode_value(stream, UINT) == value


@pytest.mark.parametrize(("value", "hexed"), INT_VECTORS)
def test_int_encoding(value: int, hexed: str) -> None:
    out = bytearray()
    put_int(out, value)
    assert out.hex() == hexed
    stream = bytes([2 + len(out), 0x04, 0x00]) + out
    assert encode_value(INT, value) == stream
    assert decode_value(stream, INT) == value


def test_float_encoding_matches_go_doc() -> None:
    # Go's doc: 17.0 is sent as the byte-reversed float64 bits, FE 31 40.
    stream = h("05 08 00 fe3140")
    assert encode_value(FLOAT, 17.0) == stream
    assert decode_value(stream, FLOAT) == 17.0


def test_a1_peer_name_as_uint() -> None:
    assert PEER_A == 187723572702975
    out = bytearray()
    put_uint(out, PEER_A)
    assert out == h("fa aabbccddeeff")


A1_FEATURES_TYPE = "0eff81040102ff8200010c010c0000"
A1_NAME = A1_FEATURES_TYPE + "1bff820001044e616d651161613a62623a63633a64643a65653a6666"
A1_EMPTY = A1_FEATURES_TYPE + "04ff820000"


def test_a1_features_map() -> None:
    value = {"Name": "aa:bb:cc:dd:ee:ff"}
    assert encode_value(FEATURES, value) == h(A1_NAME)
    assert decode_value(h(A1_NAME), FEATURES) == value
    assert Decoder(h(A1_NAME)).decode_any() == value


def test_a1_empty_features_map() -> None:
    assert encode_value(FEATURES, {}) == h(A1_EMPTY)
    assert encode_value(FEATURES, None) == h(A1_EMPTY)  # top-level nil map: count 0
    assert decode_value(h(A1_EMPTY), FEATURES) == {}


# ===================================================================================
# A.2 live capture
# ===================================================================================

A2_FEATURES_A = (
    "0000009b0eff81040102ff8200010c010c0000ff8aff820007035549441235393232353131373935"
    "323030393939353406436f6e6e494414313630313533363037333532333835303035333807547275"
    "737465640566616c73650f506565724e616d65466c61766f7572036d6163044e616d651161613a62"
    "623a63633a64643a65653a6666084e69636b4e616d6505686f7374410753686f72744944023135"
)
A2_FEATURES_B = (
    "0000009e0eff81040102ff8200010c010c0000ff8dff8200070f506565724e616d65466c61766f75"
    "72036d6163044e616d651130323a30303a30303a30303a30303a3031084e69636b4e616d6505686f"
    "7374420753686f72744944043332313803554944133530373632343135383333363934383432323206"
    "436f6e6e494414313533303135303638353039343838333338323807547275737465640566616c7365"
)
A2_TOPOLOGY_MESSAGE = (
    "00000158040b0c0008746f706f6c6f6779090600faaabbccddeefffe013e0a00fe013962ff830301010b"
    "7065657253756d6d61727901ff8400010601084e616d6542797465010a0001084e69636b4e616d65010c"
    "000103554944010600010756657273696f6e010600010753686f72744944010600010a48617353686f72"
    "744944010200000022ff8401060200000000010105686f73744201f846726ed332cdf7be02fe0c920101"
    "000dff87020102ff880001ff8600005bff8503010111636f6e6e656374696f6e53756d6d61727901ff86"
    "00010401084e616d6542797465010a00010d52656d6f746554435041646472010c0001084f7574626f75"
    "6e64010200010b45737461626c6973686564010200000004ff88000022ff840106aabbccddeeff010568"
    "6f73744101f80838194f551a06720102010f01010020ff8800010106020000000001010f3132372e302e"
    "302e313a3532333438020100"
)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            A2_FEATURES_A,
            {
                "UID": "592251179520099954",
                "ConnID": "16015360735238500538",
                "Trusted": "false",
                "PeerNameFlavour": "mac",
                "Name": "aa:bb:cc:dd:ee:ff",
                "NickName": "hostA",
                "ShortID": "15",
            },
        ),
        (
            A2_FEATURES_B,
            {
                "PeerNameFlavour": "mac",
                "Name": "02:00:00:00:00:01",
                "NickName": "hostB",
                "ShortID": "3218",
                "UID": "5076241583369484222",
                "ConnID": "15301506850948833828",
                "Trusted": "false",
            },
        ),
    ],
)
def test_a2_features_messages(message: str, expected: dict[str, str]) -> None:
    raw = h(message)
    assert int.from_bytes(raw[:4], "big") == len(raw) - 4
    decoded = decode_value(raw[4:], FEATURES)
    assert decoded == expected
    assert list(decoded) == list(expected)  # wire order preserved
    assert encode_value(FEATURES, expected) == raw[4:]


def _a2_topology_payload() -> bytes:
    raw = h(A2_TOPOLOGY_MESSAGE)
    assert int.from_bytes(raw[:4], "big") == len(raw) - 4 == 344
    assert raw[4] == 4  # ProtocolGossip
    header = Decoder(raw[5:])
    assert header.decode(STRING) == "topology"
    assert header.decode(UINT) == PEER_A
    payload = header.decode(BYTES)
    assert header.at_end()
    assert isinstance(payload, bytes)
    assert len(payload) == 313
    assert raw[-313 - 3 : -313] == h("fe0139")
    return payload


A2_PEERS = [
    (
        {
            "NameByte": h("020000000001"),
            "NickName": "hostB",
            "UID": 5076241583369484222,
            "Version": 0,
            "ShortID": 3218,
            "HasShortID": True,
        },
        [],
    ),
    (
        {
            "NameByte": h("aabbccddeeff"),
            "NickName": "hostA",
            "UID": 592251179520099954,
            "Version": 2,
            "ShortID": 15,
            "HasShortID": True,
        },
        [
            {
                "NameByte": h("020000000001"),
                "RemoteTCPAddr": "127.0.0.1:52348",
                "Outbound": False,
                "Established": True,
            }
        ],
    ),
]


def test_a2_topology_payload_decodes_to_two_peers() -> None:
    decoder = Decoder(_a2_topology_payload())
    peers = []
    while not decoder.at_end():
        peers.append((decoder.decode(PEER_SUMMARY), decoder.decode(CONNECTIONS)))
    assert peers == A2_PEERS


def test_a2_topology_payload_encodes_byte_exact() -> None:
    encoder = Encoder(first_id=66)
    out = b"".join(
        encoder.encode(PEER_SUMMARY, peer) + encoder.encode(CONNECTIONS, conns)
        for peer, conns in A2_PEERS
    )
    assert out == _a2_topology_payload()


# ===================================================================================
# A.4 gossip headers
# ===================================================================================

A4_TAG6 = "0b0c0008746f706f6c6f6779 090600faaabbccddeeff 060a0003010203"
A4_TAG5 = "0f0c000c4950616c6c6f636174696f6e 090600faaabbccddeeff 090600fa020000000001 050a0002dead"


def test_a4_gossip_broadcast_header() -> None:
    decoder = Decoder(h(A4_TAG6))
    assert decoder.decode(STRING) == "topology"
    assert decoder.decode(UINT) == PEER_A
    assert decoder.decode(BYTES) == h("010203")
    assert decoder.at_end()
    enc = Encoder()
    out = enc.encode(STRING, "topology") + enc.encode(UINT, PEER_A) + enc.encode(BYTES, h("010203"))
    assert out == h(A4_TAG6)


def test_a4_gossip_unicast_header() -> None:
    decoder = Decoder(h(A4_TAG5))
    assert decoder.decode(STRING) == "IPallocation"
    assert decoder.decode(UINT) == PEER_A
    assert decoder.decode(UINT) == PEER_B
    assert decoder.decode(BYTES) == h("dead")
    assert decoder.at_end()
    enc = Encoder()
    parts = [(STRING, "IPallocation"), (UINT, PEER_A), (UINT, PEER_B), (BYTES, h("dead"))]
    assert b"".join(enc.encode(t, v) for t, v in parts) == h(A4_TAG5)


# ===================================================================================
# A.5 topology payload
# ===================================================================================

A5_PEER_DEF = (
    "62 ff830301010b7065657253756d6d61727901ff8400010601084e616d6542797465010a0001084e69636b"
    "4e616d65010c000103554944010600010756657273696f6e010600010753686f72744944010600010a4861"
    "7353686f727449440102000000"
)
A5_PEER_VALUE = "24 ff840106aabbccddeeff0105686f73744101f80102030405060708010701fe0abc010100"
A5_SLICE_DEF = "0d ff87020102ff880001ff860000"
A5_CONN_DEF = (
    "5b ff8503010111636f6e6e656374696f6e53756d6d61727901ff8600010401084e616d6542797465010a00"
    "010d52656d6f746554435041646472010c0001084f7574626f756e64010200010b45737461626c69736865"
    "640102000000"
)
A5_CONN_VALUE = "20 ff8800010106020000000001010d31302e302e302e323a363738330101010100"
A5 = A5_PEER_DEF + A5_PEER_VALUE + A5_SLICE_DEF + A5_CONN_DEF + A5_CONN_VALUE
A5_PEER = {
    "NameByte": h("aabbccddeeff"),
    "NickName": "hostA",
    "UID": 0x0102030405060708,
    "Version": 7,
    "ShortID": 0xABC,
    "HasShortID": True,
}
A5_CONNS = [
    {
        "NameByte": h("020000000001"),
        "RemoteTCPAddr": "10.0.0.2:6783",
        "Outbound": True,
        "Established": True,
    }
]


def test_a5_topology_decode() -> None:
    decoder = Decoder(h(A5))
    assert decoder.decode(PEER_SUMMARY) == A5_PEER
    assert decoder.decode(CONNECTIONS) == A5_CONNS
    assert decoder.at_end()


def test_a5_topology_encode_byte_exact() -> None:
    encoder = Encoder(first_id=66)
    first = encoder.encode(PEER_SUMMARY, A5_PEER)
    assert first == h(A5_PEER_DEF + A5_PEER_VALUE)
    # []connectionSummary (68) is defined before its element struct (67), as Go does.
    second = encoder.encode(CONNECTIONS, A5_CONNS)
    assert second == h(A5_SLICE_DEF + A5_CONN_DEF + A5_CONN_VALUE)


def test_a5_types_are_sent_once_per_encoder() -> None:
    encoder = Encoder(first_id=66)
    encoder.encode(PEER_SUMMARY, A5_PEER)
    encoder.encode(CONNECTIONS, A5_CONNS)
    assert encoder.encode(PEER_SUMMARY, A5_PEER) == h(A5_PEER_VALUE)
    assert encoder.encode(CONNECTIONS, []) == h("04 ff88 00 00")  # §13.4 empty slice


def test_a5_decode_any_shows_present_fields_only() -> None:
    decoder = Decoder(h(A5))
    assert decoder.decode_any() == A5_PEER
    conns = decoder.decode_any()
    assert conns == A5_CONNS


def test_a5_with_field_subset_skips_unknown_fields() -> None:
    subset = Struct("x", (("NickName", STRING), ("Version", UINT), ("Missing", Slice(UINT))))
    decoder = Decoder(h(A5))
    assert decoder.decode(subset) == {"NickName": "hostA", "Version": 7, "Missing": []}
    assert decoder.decode(Slice(Struct("c", (("Established", BOOL),)))) == [{"Established": True}]


# ===================================================================================
# A.8 / A.9 IPAM
# ===================================================================================

A8_RANGE_DEF = "25 ff990301010552616e676501ff9a000102010553746172740106000103456e640106000000"
A8_RANGE_VALUE = "0f ff9a01fc0a20000001fc0a20010000"
A8_SPACE_REQUEST = (
    "0025ff990301010552616e676501ff9a000102010553746172740106000103456e6401060000000fff9a01fc"
    "0a20000001fc0a20010000"
)
A8_DEFS = """
45 ff810301010b676f73736970537461746501ff8200010401034e6f7701040001094e69636b6e616d657301ff8400
   01055061786f7301ff9000010452696e6701ff92000000
28 ff83040101186d61705b6d6573682e506565724e616d655d737472696e6701ff84000106010c0000
1d ff8f0401010b476f73736970537461746501ff900001ff8601ff880000
1d ff85030102ff8600010201044e616d6501060001035549440106000000
38 ff87030102ff88000103010750726f6d69736501ff8a000108416363657074656401ff8a00010b4163636570746564
   56616c01ff8c000000
30 ff890301010a50726f706f73616c494401ff8a0001020105526f756e64010600010850726f706f73657201ff8600
   0000
32 ff8b0301010d416363657074656456616c756501ff8c000102010556616c756501ff8e0001064f726967696e01ff
   8a000000
13 ff8d0201010556616c756501ff8e0001060000
45 ff910301010452696e6701ff92000105010553746172740106000103456e640106000104506565720106000107456e
   747269657301ff96000105536565647301ff98000000
16 ff9502010107656e747269657301ff960001ff940000
34 ff93030102ff940001040105546f6b656e010600010450656572010600010756657273696f6e010600010446726565
   0106000000
1d ff970201010f5b5d6d6573682e506565724e616d6501ff980001060000
"""
A8_VALUE = """
68 ff8201fcbebc20000101faaabbccddeeff05686f7374410201fc0a20000001fc0a30000001faaabbccddeeff0102
   01fc0a20000001fa02000000000102fd0800000001fc0a28000001faaabbccddeeff02fd080000000102fa02000000
   0001faaabbccddeeff0000
"""
A9 = """
0e ff8d040102ff8e000106010c0000
37 ff93030101014501ff940001040105546f6b656e010600010450656572010600010756657273696f6e01060001044672
   65650106000000
0d ff91020102ff920001ff940000
0c ff95020102ff960001060000
42 ff8f030101015201ff90000105010553746172740106000103456e640106000104506565720106000107456e74726965
   7301ff92000105536565647301ff96000000
31 ff8b03010102475301ff8c00010301034e6f7701040001094e69636b6e616d657301ff8e00010452696e6701ff900000
   00
68 ff8c01fcbebc20000101faaabbccddeeff05686f7374410101fc0a20000001fc0a30000001faaabbccddeeff010201fc
   0a20000001fa02000000000102fd0800000001fc0a28000001faaabbccddeeff02fd080000000102fa020000000001fa
   aabbccddeeff0000
"""
RING_VALUE = {
    "Start": 0x0A200000,  # 10.32.0.0
    "End": 0x0A300000,  # 10.48.0.0
    "Peer": PEER_A,
    "Entries": [
        {"Token": 0x0A200000, "Peer": PEER_B, "Version": 0, "Free": 524288},
        {"Token": 0x0A280000, "Peer": PEER_A, "Version": 0, "Free": 524288},
    ],
    "Seeds": [PEER_B, PEER_A],
}
GOSSIP_STATE_VALUE = {
    "Now": 1600000000,
    "Nicknames": {PEER_A: "hostA"},
    "Paxos": {},
    "Ring": RING_VALUE,
}


def test_a8_space_request_range() -> None:
    value = {"Start": 0x0A200000, "End": 0x0A200100}
    # Range got id 77 in that Go process: the same stream comes from first_id=77.
    gob = encode_value(RANGE, value, first_id=77)
    assert gob == h(A8_RANGE_DEF + A8_RANGE_VALUE)
    assert h(A8_SPACE_REQUEST) == b"\x00" + gob
    assert decode_value(h(A8_SPACE_REQUEST)[1:], RANGE) == value


def test_a8_gossip_state_decode() -> None:
    assert decode_value(h(A8_DEFS + A8_VALUE), GOSSIP_STATE) == GOSSIP_STATE_VALUE


def test_a8_gossip_state_nil_paxos_is_absent_without_zero_fill() -> None:
    value = decode_value(h(A8_DEFS + A8_VALUE), GOSSIP_STATE, fill_zero=False)
    assert isinstance(value, dict)
    assert "Paxos" not in value  # nil map on the wire (Go omits it)
    assert value["Ring"] == {
        "Start": 0x0A200000,
        "End": 0x0A300000,
        "Peer": PEER_A,
        "Entries": [  # Version 0 is omitted on the wire, so absent here
            {"Token": 0x0A200000, "Peer": PEER_B, "Free": 524288},
            {"Token": 0x0A280000, "Peer": PEER_A, "Free": 524288},
        ],
        "Seeds": [PEER_B, PEER_A],
    }


def test_a8_gossip_state_encode_byte_exact() -> None:
    value = {**GOSSIP_STATE_VALUE, "Paxos": None}  # nil Paxos map
    assert encode_value(GOSSIP_STATE, value) == h(A8_DEFS + A8_VALUE)


def test_a9_hand_built_ipam_payload_decodes_like_a8() -> None:
    assert decode_value(h(A9), GOSSIP_STATE) == GOSSIP_STATE_VALUE


def _without_paxos() -> dict[str, object]:
    return {k: v for k, v in GOSSIP_STATE_VALUE.items() if k != "Paxos"}


def _messages(stream: bytes) -> list[bytes]:
    """Split a stream of single-byte-length messages (true of all A.9 messages)."""
    out, pos = [], 0
    while pos < len(stream):
        out.append(stream[pos : pos + 1 + stream[pos]])
        pos += 1 + stream[pos]
    return out


def test_a9_reencoded_with_its_own_types() -> None:
    # A.9's hand-built encoder numbered E 74 and []E 73 and sent inner types first;
    # Go's numbering (ours) gives E 73, []E 74 and sends GS first.  Type ids and
    # message order are free choices (that is A.9's point), so we check that our
    # stream for the same types has the same messages up to that, the identical
    # value message, and decodes to the same ring.
    e = Struct("E", ENTRY.fields)
    r = Struct("R", (*RING.fields[:3], ("Entries", Slice(e)), ("Seeds", Slice(UINT))))
    gs = Struct("GS", (("Now", INT), ("Nicknames", Map(UINT, STRING)), ("Ring", r)))
    assert decode_value(h(A9), gs) == _without_paxos()
    ours = encode_value(gs, _without_paxos(), first_id=70)
    assert decode_value(ours, GOSSIP_STATE) == GOSSIP_STATE_VALUE
    theirs_msgs, our_msgs = _messages(h(A9)), _messages(ours)
    assert our_msgs[-1] == theirs_msgs[-1]  # the value message only names id 70
    # map[uint]string (71), []uint (75) and GS (70) definitions are byte-identical.
    assert set(our_msgs) & set(theirs_msgs[:-1]) == {theirs_msgs[i] for i in (0, 3, 5)}
    # The received type tables are equal once E/[]E are renumbered 73 <-> 74.
    perm = {73: 74, 74: 73}
    ours_table = {perm.get(k, k): _renumber(w, perm) for k, w in _type_table(ours).items()}
    assert ours_table == _type_table(h(A9))


def _type_table(stream: bytes) -> dict[int, Wire]:
    decoder = Decoder(stream)
    decoder.decode_any()
    return dict(decoder._types)


def _renumber(wire: Wire, perm: dict[int, int]) -> Wire:
    if isinstance(wire, WStruct):
        return WStruct(wire.name, tuple((n, perm.get(i, i)) for n, i in wire.fields))
    assert isinstance(wire, WSlice | WMap)
    return msgspec.structs.replace(wire, elem=perm.get(wire.elem, wire.elem))


# ===================================================================================
# A.10 DNS
# ===================================================================================

A10 = """
33 ff810301010a476f737369704461746101ff82000102010954696d657374616d700104000107456e747269657301ff
   86000000
16 ff8502010107456e747269657301ff860001ff840000
5e ff8303010105456e74727901ff84000106010b436f6e7461696e65724944010c0001064f726967696e01060001044164
   64720106000108486f73746e616d65010c00010756657273696f6e0104000109546f6d6273746f6e650104000000
62 ff8201fcbebc2000010201046465616401faaabbccddeeff01fc0a200006010f64622e77656176652e6c6f63616c2e
   010201fcbebc200200010663306666656501faaabbccddeeff01fc0a20000501107765622e77656176652e6c6f6361
   6c2e0000
"""
A10_VALUE = {
    "Timestamp": 1600000000,
    "Entries": [
        {
            "ContainerID": "dead",
            "Origin": PEER_A,
            "Addr": 0x0A200006,
            "Hostname": "db.weave.local.",
            "Version": 1,
            "Tombstone": 1600000001,
        },
        {
            "ContainerID": "c0ffee",
            "Origin": PEER_A,
            "Addr": 0x0A200005,
            "Hostname": "web.weave.local.",
            "Version": 0,
            "Tombstone": 0,
        },
    ],
}


def test_a10_dns_gossip_decode() -> None:
    assert decode_value(h(A10), GOSSIP_DATA) == A10_VALUE


def test_a10_dns_gossip_encode_byte_exact() -> None:
    assert encode_value(GOSSIP_DATA, A10_VALUE) == h(A10)
