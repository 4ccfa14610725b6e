"""The wire types of a gob stream: what type-definition messages describe (spec §11.4),
and the bootstrap types that describe type definitions themselves."""

from __future__ import annotations

import msgspec

from weavenet.core.wire.gob_types import MAX_TYPE_ID, GobError


class WStruct(msgspec.Struct, frozen=True):
    name: str
    fields: tuple[tuple[str, int], ...]


class WSlice(msgspec.Struct, frozen=True):
    name: str
    elem: int


class WArray(msgspec.Struct, frozen=True):
    name: str
    elem: int
    length: int


class WMap(msgspec.Struct, frozen=True):
    name: str
    key: int
    elem: int


class WOpaque(msgspec.Struct, frozen=True):
    """GobEncoder / BinaryMarshaler / TextMarshaler: the value is a byte string."""

    name: str


Wire = WStruct | WSlice | WArray | WMap | WOpaque

# The types that describe types, under Go's fixed ids (16 wireType ... 23 mapType).
BOOT: dict[int, Wire] = {
    16: WStruct(
        "wireType",
        (
            ("ArrayT", 17),
            ("SliceT", 19),
            ("StructT", 20),
            ("MapT", 23),
            ("GobEncoderT", 24),
            ("BinaryMarshalerT", 24),
            ("TextMarshalerT", 24),
        ),
    ),
    17: WStruct("arrayType", (("CommonType", 18), ("Elem", 2), ("Len", 2))),
    18: WStruct("CommonType", (("Name", 6), ("Id", 2))),
    19: WStruct("sliceType", (("CommonType", 18), ("Elem", 2))),
    20: WStruct("structType", (("CommonType", 18), ("Field", 22))),
    21: WStruct("fieldType", (("Name", 6), ("Id", 2))),
    22: WSlice("", 21),
    23: WStruct("mapType", (("CommonType", 18), ("Key", 2), ("Elem", 2))),
    24: WStruct("gobEncoderType", (("CommonType", 18),)),
}


def wire_from_def(d: dict[str, object]) -> Wire:
    """Turn a decoded ``wireType`` (dict of the fields present) into our wire form."""
    if len(d) != 1:
        raise GobError(f"gob: type definition sets {len(d)} kinds, want exactly one")
    kind, body = next(iter(d.items()))
    name = _field(_field(body, "CommonType", {}), "Name", "")
    assert isinstance(name, str)
    if kind == "StructT":
        fields = _field(body, "Field", [])
        assert isinstance(fields, list)
        pairs = tuple((str(_field(f, "Name", "")), _ref(_field(f, "Id", 0))) for f in fields)
        return WStruct(name, pairs)
    if kind == "SliceT":
        return WSlice(name, _ref(_field(body, "Elem", 0)))
    if kind == "ArrayT":
        length = _field(body, "Len", 0)
        assert isinstance(length, int)
        if length < 0:
            raise GobError(f"gob: negative array length {length}")
        return WArray(name, _ref(_field(body, "Elem", 0)), length)
    if kind == "MapT":
        return WMap(name, _ref(_field(body, "Key", 0)), _ref(_field(body, "Elem", 0)))
    return WOpaque(name)


def _field(d: object, name: str, default: object) -> object:
    """A field of a struct decoded without zero filling (shapes fixed by ``WIRE_TYPE``)."""
    assert isinstance(d, dict)
    return d.get(name, default)


def _ref(value: object) -> int:
    if not isinstance(value, int) or not 0 < value <= MAX_TYPE_ID:
        raise GobError(f"gob: invalid type id reference {value!r}")
    return value
