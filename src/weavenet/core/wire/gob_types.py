"""Gob type descriptors and primitive encodings (Go ``encoding/gob`` subset, spec §11).

A :class:`GobType` describes the *Go* type of a value: the predefined basic types
(``BOOL``, ``INT``, ``UINT``, ``FLOAT``, ``BYTES``, ``STRING``, ``COMPLEX``) and the
composite :class:`Struct`, :class:`Slice` and :class:`Map`.  Descriptors are frozen
Structs (msgspec) compared by value, so two equal descriptors are the same Go type.

The ``name`` of a composite type is what Go puts in ``CommonType.Name``; it is
informational only (receivers match struct fields by name, never type names).
"""

from __future__ import annotations

import struct

import msgspec

from weavenet.core.errors import LocalProtocolError, RemoteProtocolError

MAX_UINT = (1 << 64) - 1
MIN_INT = -(1 << 63)
MAX_INT = (1 << 63) - 1
FIRST_USER_ID = 64
MAX_TYPE_ID = (1 << 31) - 1  # Go's typeId is an int32


class GobError(RemoteProtocolError):
    """Malformed or incompatible gob input (the sender's fault)."""


class GobEncodeError(LocalProtocolError):
    """A value handed to the encoder does not fit its declared gob type (our bug)."""


class GobType:
    """Base of all gob type descriptors."""

    __slots__ = ()


class Basic(msgspec.Struct, GobType, frozen=True):
    """A predefined gob type with a fixed wire id."""

    id: int
    name: str

    def __repr__(self) -> str:
        return self.name.upper()


BOOL = Basic(1, "bool")
INT = Basic(2, "int")
UINT = Basic(3, "uint")
FLOAT = Basic(4, "float")
BYTES = Basic(5, "bytes")
STRING = Basic(6, "string")
COMPLEX = Basic(7, "complex")
INTERFACE_ID = 8  # interface values are not supported (never used on the weave wire)

BASIC_BY_ID: dict[int, Basic] = {t.id: t for t in (BOOL, INT, UINT, FLOAT, BYTES, STRING, COMPLEX)}


class Struct(msgspec.Struct, GobType, frozen=True):
    """A Go struct: ``fields`` are (exported field name, type) in declaration order."""

    name: str
    fields: tuple[tuple[str, GobType], ...]

    def __post_init__(self) -> None:
        names = [name for name, _ in self.fields]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"struct {self.name!r}: field names must be unique and non-empty")
        if not all(isinstance(t, GobType) for _, t in self.fields):
            raise ValueError(f"struct {self.name!r}: field types must be GobType instances")


class Slice(msgspec.Struct, GobType, frozen=True):
    """A Go slice of ``elem`` (``[]byte`` is the basic ``BYTES``, not a Slice)."""

    elem: GobType
    name: str = ""


class Map(msgspec.Struct, GobType, frozen=True):
    """A Go map.  Struct-typed keys are represented in Python as tuples of pairs."""

    key: GobType
    elem: GobType
    name: str = ""


def zero_value(typ: GobType) -> object:
    """The Python form of Go's zero value of ``typ`` (nested structs filled in)."""
    if isinstance(typ, Basic):
        return _BASIC_ZERO[typ.id]
    if isinstance(typ, Struct):
        return {name: zero_value(ft) for name, ft in typ.fields}
    if isinstance(typ, Slice):
        return []
    if isinstance(typ, Map):
        return {}
    raise TypeError(f"not a gob type: {typ!r}")


_BASIC_ZERO: dict[int, object] = {1: False, 2: 0, 3: 0, 4: 0.0, 5: b"", 6: "", 7: 0j}


def freeze(value: object) -> object:
    """Make a decoded value hashable (for map keys): dict -> tuple of pairs, list -> tuple."""
    if isinstance(value, dict):
        return tuple((k, freeze(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


# --- the types gob uses to describe types (wireType and friends, Go type.go) ---------

COMMON_TYPE = Struct("CommonType", (("Name", STRING), ("Id", INT)))
ARRAY_TYPE = Struct("arrayType", (("CommonType", COMMON_TYPE), ("Elem", INT), ("Len", INT)))
SLICE_TYPE = Struct("sliceType", (("CommonType", COMMON_TYPE), ("Elem", INT)))
FIELD_TYPE = Struct("fieldType", (("Name", STRING), ("Id", INT)))
STRUCT_TYPE = Struct("structType", (("CommonType", COMMON_TYPE), ("Field", Slice(FIELD_TYPE))))
MAP_TYPE = Struct("mapType", (("CommonType", COMMON_TYPE), ("Key", INT), ("Elem", INT)))
GOB_ENCODER_TYPE = Struct("gobEncoderType", (("CommonType", COMMON_TYPE),))
WIRE_TYPE = Struct(
    "wireType",
    (
        ("ArrayT", ARRAY_TYPE),
        ("SliceT", SLICE_TYPE),
        ("StructT", STRUCT_TYPE),
        ("MapT", MAP_TYPE),
        ("GobEncoderT", GOB_ENCODER_TYPE),
        ("BinaryMarshalerT", GOB_ENCODER_TYPE),
        ("TextMarshalerT", GOB_ENCODER_TYPE),
    ),
)


# --- primitive encodings (§11.2) -----------------------------------------------------


def put_uint(out: bytearray, value: int) -> None:
    """Append gob's uint encoding of ``value`` (0 <= value < 2**64)."""
    if value < 0x80:
        out.append(value)
        return
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    out.append(0x100 - len(raw))
    out += raw


def put_int(out: bytearray, value: int) -> None:
    """Append gob's int encoding of ``value`` (sign in the low bit)."""
    put_uint(out, (~value << 1) | 1 if value < 0 else value << 1)


def uint_to_int(u: int) -> int:
    return ~(u >> 1) if u & 1 else u >> 1


def float_to_uint(value: float) -> int:
    """Go sends float64 bits byte-reversed, so small exponents give short encodings."""
    return int.from_bytes(struct.pack("<d", value), "big")


def uint_to_float(u: int) -> float:
    result: float = struct.unpack("<d", u.to_bytes(8, "big"))[0]
    return result
