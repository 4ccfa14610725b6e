"""Gob codec: malformed input, type mismatches, encoder misuse and less common shapes."""

from __future__ import annotations

import pytest

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError
from weavenet.core.wire.gob import (
    BOOL,
    BYTES,
    INT,
    STRING,
    UINT,
    Decoder,
    Encoder,
    GobEncodeError,
    GobError,
    GobType,
    Map,
    Slice,
    Struct,
    decode_value,
    encode_value,
)
from weavenet.core.wire.gob_decode import MAX_DEPTH
from weavenet.core.wire.gob_types import put_int, put_uint, zero_value

PEER_SUMMARY = Struct(
    "peerSummary",
    (("NameByte", BYTES), ("NickName", STRING), ("UID", UINT), ("Version", UINT)),
)
CONNECTIONS = Slice(Struct("c", (("RemoteTCPAddr", STRING), ("Established", BOOL))))
NODE_ID = Struct("", (("Name", UINT), ("UID", UINT)))
PROPOSAL_ID = Struct("ProposalID", (("Round", UINT), ("Proposer", NODE_ID)))
NODE_CLAIMS = Struct("", (("Promise", PROPOSAL_ID), ("AcceptedVal", Slice(UINT))))
NESTED = Struct(
    "n",
    (
        ("Now", INT),
        ("Names", Map(UINT, STRING)),
        ("Paxos", Map(NODE_ID, NODE_CLAIMS)),
        ("Deep", Slice(Slice(PROPOSAL_ID))),
    ),
)


def msg(*parts: bytes | int) -> bytes:
    """One length-prefixed message; ints are written as gob ints (type ids)."""
    body = bytearray()
    for part in parts:
        if isinstance(part, int):
            put_int(body, part)
        else:
            body += part
    out = bytearray()
    put_uint(out, len(body))
    return bytes(out + body)


def uint(value: int) -> bytes:
    out = bytearray()
    put_uint(out, value)
    return bytes(out)


def struct_def(tid: int, name: str, fields: list[tuple[str, int]]) -> bytes:
    """A type-definition message for a struct, built with our own encoder's rules."""
    body = bytearray(b"\x03\x01")  # wireType.StructT, structType.CommonType
    if name:
        body += b"\x01" + uint(len(name)) + name.encode()
        body += b"\x01"
    else:
        body += b"\x02"
    put_int(body, tid)
    body += b"\x00\x01" + uint(len(fields))
    for fname, fid in fields:
        body += b"\x01" + uint(len(fname)) + fname.encode() + b"\x01"
        put_int(body, fid)
        body += b"\x00"
    return msg(-tid, bytes(body + b"\x00\x00"))


def slice_def(tid: int, elem: int) -> bytes:
    body = bytearray(b"\x02\x01\x02")
    put_int(body, tid)
    body += b"\x00\x01"
    put_int(body, elem)
    return msg(-tid, bytes(body + b"\x00\x00"))


def test_gob_error_is_the_peers_fault() -> None:
    assert issubclass(GobError, RemoteProtocolError)
    assert issubclass(GobEncodeError, LocalProtocolError)


# --- malformed streams ---------------------------------------------------------------


def _streams() -> list[tuple[bytes, list[GobType]]]:
    enc = Encoder()
    peer = {"NameByte": b"\xaa" * 6, "NickName": "hostA", "UID": 1 << 60, "Version": 7}
    topology = enc.encode(PEER_SUMMARY, peer) + enc.encode(
        CONNECTIONS, [{"RemoteTCPAddr": "10.0.0.2:6783", "Established": True}]
    )
    claims = {"Promise": {"Round": 2, "Proposer": {"Name": 5, "UID": 6}}, "AcceptedVal": [1]}
    nested = {
        "Now": -1600000000,
        "Names": {1: "a", 2: ""},
        "Paxos": {(("Name", 5), ("UID", 6)): claims},
        "Deep": [[{"Round": 1}], []],
    }
    return [
        (topology, [PEER_SUMMARY, CONNECTIONS]),
        (encode_value(NESTED, nested), [NESTED]),
        (encode_value(Map(STRING, STRING), {"Name": "x"}), [Map(STRING, STRING)]),
    ]


@pytest.mark.parametrize(("stream", "types"), _streams())
def test_every_truncation_raises_gob_error(stream: bytes, types: list[GobType]) -> None:
    for cut in range(len(stream)):
        decoder = Decoder(stream[:cut])
        with pytest.raises(GobError):
            for typ in types:
                decoder.decode(typ)
        any_decoder = Decoder(stream[:cut])
        with pytest.raises(GobError):
            for _ in types:
                any_decoder.decode_any()
    whole = Decoder(stream)
    for typ in types:
        whole.decode(typ)
    assert whole.at_end()


@pytest.mark.parametrize(
    ("data", "why", "reason"),
    [
        (b"", "empty stream", "ended before"),
        (b"\x00", "zero-length message", "message length"),
        (b"\x05\x06\x00", "length past end", "message length"),
        (b"\xf7" + bytes(9), "uint longer than 8 bytes", "uint byte count"),
        (b"\x80" + bytes(20), "uint byte count 128", "uint byte count"),
        (b"\x03\x06\x00\xff", "truncated uint inside a message", "past the end"),
        (b"\x03\x0c\x00\x05", "string length past end of message", "exceeds"),
        (b"\x03\xff\x82\x00", "value of undefined type 65", "undefined type id 65"),
        (b"\x02\x00\x00", "type id 0", "type id 0"),
        (b"\x03\x06\x01\x05", "non-zero singleton delta", "singleton"),
        (b"\x04\x06\x00\x05\x00", "extra byte after value", "extra bytes"),
        (msg(-65, b"\x00"), "type definition without any kind", "0 kinds"),
        (
            msg(-65, b"\x02\x01\x02\xff\x82\x00\x01\x06\x00\x01\x01\x00\x00\x00"),
            "two kinds",
            "2 kinds",
        ),
        (msg(-10, b"\x02\x01\x00\x01\x06\x00\x00"), "type id below 64", "invalid type id 10"),
        (slice_def(65, 3) + slice_def(65, 3), "redefinition", "duplicate"),
        (slice_def(65, 3) + b"\x01", "trailing garbage", "message length"),
        (
            slice_def(65, 66) + msg(65, b"\x00\x00"),
            "reference to an undefined type",
            "undefined type id 66",
        ),
        (slice_def(65, 0) + msg(65, b"\x00\x00"), "reference to type id 0", "reference 0"),
        (slice_def(65, 3) + msg(65, b"\x00" + uint(1 << 63)), "huge slice count", "exceeds"),
        (
            slice_def(65, 3) + msg(65, b"\x00\x03\x01\x02"),
            "slice count past message end",
            "exceeds",
        ),
        (
            struct_def(65, "T", [("A", 3)]) + msg(65, b"\x02\x01\x00"),
            "field number too big",
            "out of range",
        ),
        (
            struct_def(65, "T", [("A", 8)]) + msg(65, b"\x01\x00\x00"),
            "interface value",
            "interface",
        ),
    ],
)
def test_malformed_input_raises_gob_error(data: bytes, why: str, reason: str) -> None:
    with pytest.raises(GobError, match=reason):
        Decoder(data).decode_any()


def test_trailing_data_is_rejected_by_decode_value() -> None:
    stream = encode_value(UINT, 5)
    assert decode_value(stream, UINT) == 5
    with pytest.raises(GobError, match="trailing"):
        decode_value(stream + stream, UINT)
    with pytest.raises(GobError):
        decode_value(stream + b"\x00", UINT)


def test_decoding_past_the_end_raises() -> None:
    decoder = Decoder(encode_value(BOOL, True))
    assert decoder.decode(BOOL) is True
    assert decoder.at_end()
    with pytest.raises(GobError):
        decoder.decode(BOOL)


def test_deep_nesting_is_capped() -> None:
    # type T struct { Next []T }: each level is "01 01" (field 0, count 1) ... "00".
    defs = struct_def(65, "T", [("Next", 66)]) + slice_def(66, 65)

    def nested(levels: int) -> bytes:
        return defs + msg(65, b"\x01\x01" * levels + b"\x00" * (levels + 1))

    value = Decoder(nested(10)).decode_any()
    for _ in range(10):
        assert isinstance(value, dict)
        value = value["Next"][0]
    assert value == {}
    with pytest.raises(GobError, match="deeply"):
        Decoder(nested(MAX_DEPTH + 1)).decode_any()
    with pytest.raises(GobError):  # also when the field is only being skipped
        Decoder(nested(MAX_DEPTH + 1)).decode(Struct("T", (("Other", INT),)))


# --- type compatibility (Go's compatibleType) -----------------------------------------


@pytest.mark.parametrize(
    ("typ", "value", "wrong"),
    [
        (INT, 5, UINT),
        (UINT, 5, INT),
        (BOOL, True, UINT),
        (STRING, "x", BYTES),
        (BYTES, b"x", STRING),
        (BYTES, b"x", Slice(UINT)),
        (Slice(UINT), [1], BYTES),
        (Slice(UINT), [1], Slice(INT)),
        (Map(STRING, UINT), {"a": 1}, Map(STRING, INT)),
        (Map(STRING, UINT), {"a": 1}, Struct("S", (("a", UINT),))),
        (Struct("S", (("A", UINT),)), {"A": 1}, Map(STRING, UINT)),
        (Struct("S", (("A", UINT),)), {"A": 1}, Struct("S", (("A", INT),))),
        (Struct("S", (("A", UINT),)), {"A": 1}, Struct("S", (("B", UINT),))),
    ],
)
def test_type_mismatch_raises(typ: GobType, value: object, wrong: GobType) -> None:
    stream = encode_value(typ, value)
    with pytest.raises(GobError):
        decode_value(stream, wrong)


def test_field_types_are_checked_even_when_absent_from_the_value() -> None:
    wire = Struct("S", (("A", UINT), ("B", INT)))
    stream = encode_value(wire, {"A": 1})
    with pytest.raises(GobError):
        decode_value(stream, Struct("S", (("A", UINT), ("B", UINT))))


def test_empty_structs_match_anything_struct() -> None:
    stream = encode_value(Struct("S", (("A", UINT),)), {"A": 1})
    assert decode_value(stream, Struct("E", ())) == {}
    assert decode_value(encode_value(Struct("E", ()), {}), Struct("S", (("A", UINT),))) == {"A": 0}


def test_nonzero_bool_decodes_true() -> None:
    assert decode_value(b"\x03\x02\x00\x07", BOOL) is True


# --- shapes: nil vs empty, struct keys, arrays, opaque, odd strings -------------------

HOLDER = Struct("H", (("M", Map(STRING, UINT)), ("S", Slice(UINT)), ("N", Struct("N", ()))))


def test_nil_and_empty_maps_are_distinguishable() -> None:
    nil_stream = encode_value(HOLDER, {"M": None, "N": None})
    empty_stream = encode_value(HOLDER, {"M": {}, "N": {}})
    assert nil_stream.endswith(msg(65, b"\x00"))  # everything omitted: just the terminator
    assert empty_stream.endswith(msg(65, b"\x01\x00\x02\x00\x00"))  # M: count 0; N: 00
    assert decode_value(nil_stream, HOLDER, fill_zero=False) == {}
    assert decode_value(empty_stream, HOLDER, fill_zero=False) == {"M": {}, "N": {}}
    assert decode_value(nil_stream, HOLDER) == {"M": {}, "S": [], "N": {}}


def test_struct_map_keys_use_tuples_of_pairs() -> None:
    paxos = Map(NODE_ID, NODE_CLAIMS)
    key = (("Name", 0xAABBCCDDEEFF), ("UID", 7))
    claims = zero_value(NODE_CLAIMS)
    assert isinstance(claims, dict)
    claims["Promise"] = {"Round": 3, "Proposer": dict(key)}
    stream = encode_value(paxos, {key: claims})
    assert encode_value(paxos, {key: claims}) == stream
    assert decode_value(stream, paxos) == {key: claims}
    any_value = Decoder(stream).decode_any()
    assert any_value == {key: {"Promise": {"Round": 3, "Proposer": dict(key)}}}


def test_array_and_opaque_wire_types_are_decoded_or_skipped() -> None:
    array_def = msg(-66, b"\x01\x01\x02" + uint(132) + b"\x00\x01\x06\x01\x04\x00\x00")
    opaque_def = msg(-67, b"\x05\x01\x01\x02" + uint(134) + b"\x00\x00\x00")
    holder = struct_def(65, "H", [("Arr", 66), ("Blob", 67), ("Keep", 3)])
    value = msg(65, b"\x01\x02\x05\x07" + b"\x01\x03abc" + b"\x01\x09" + b"\x00")
    stream = holder + array_def + opaque_def + value
    assert Decoder(stream).decode_any() == {"Arr": [5, 7], "Blob": b"abc", "Keep": 9}
    assert decode_value(stream, Struct("H", (("Keep", UINT),))) == {"Keep": 9}
    bad = holder + array_def + opaque_def + msg(65, b"\x01\x01\x05\x00")
    with pytest.raises(GobError, match="array length"):
        Decoder(bad).decode_any()


def test_non_utf8_strings_round_trip() -> None:
    stream = b"\x04\x0c\x00\x01\xff"
    text = decode_value(stream, STRING)
    assert isinstance(text, str)
    assert encode_value(STRING, text) == stream


def test_type_definitions_may_follow_their_use_in_any_order() -> None:
    # Value type 65 = []T, T (66) defined two messages later; names are ignored.
    defs = slice_def(65, 66) + slice_def(67, 3) + struct_def(66, "", [("X", 67)])
    stream = defs + msg(65, b"\x00\x01\x01\x02\x04\x05\x00")
    assert decode_value(stream, Slice(Struct("whatever", (("X", Slice(UINT)),)))) == [{"X": [4, 5]}]


# --- encoder misuse --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typ", "value"),
    [
        (UINT, -1),
        (UINT, 1 << 64),
        (INT, 1 << 63),
        (INT, "1"),
        (UINT, True),
        (INT, False),
        (BOOL, 0),
        (STRING, b""),
        (BOOL, 1),
        (STRING, b"x"),
        (BYTES, "x"),
        (STRING, "\ud800"),
        (Slice(UINT), {1}),
        (Map(STRING, UINT), [("a", 1)]),
        (Struct("S", (("A", UINT),)), {"B": 1}),
        (Struct("S", (("A", UINT),)), {"A": False}),
        (Struct("S", (("A", STRING),)), {"A": b""}),
        (Struct("S", (("A", UINT),)), [1]),
        (Struct("S", (("A", UINT),)), None),
        (Slice(Struct("S", (("A", UINT),))), [None]),
    ],
)
def test_encoder_rejects_values_that_do_not_fit(typ: GobType, value: object) -> None:
    with pytest.raises(GobEncodeError):
        encode_value(typ, value)


def test_failed_encode_leaves_the_stream_unchanged() -> None:
    encoder = Encoder()
    with pytest.raises(GobEncodeError):
        encoder.encode(PEER_SUMMARY, {"UID": -1})
    assert encoder.encode(PEER_SUMMARY, {}) == encode_value(PEER_SUMMARY, {})


def test_bad_type_descriptors_are_rejected() -> None:
    with pytest.raises(ValueError):
        Struct("S", (("A", UINT), ("A", INT)))
    with pytest.raises(ValueError):
        Struct("S", (("", UINT),))
    with pytest.raises(ValueError):
        Encoder(first_id=63)
