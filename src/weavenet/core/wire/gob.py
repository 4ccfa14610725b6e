"""The Go ``encoding/gob`` subset used on the Weave wire (spec §11).

Python value shapes: Struct -> ``dict[str, value]``, Slice -> ``list``, Map -> ``dict``,
INT/UINT -> ``int``, BOOL -> ``bool``, STRING -> ``str``, BYTES -> ``bytes``, FLOAT ->
``float``.  Struct-typed map keys are tuples of ``(field name, value)`` pairs.

Encoding follows Go byte for byte: type ids are assigned in Go's order (a struct
before its fields; a slice or map after its element/key types), definitions are
sent once per :class:`Encoder`, outer type first, and struct fields with zero
values are omitted (nested structs and non-nil maps are always sent; ``None`` means
a nil pointer/map).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from weavenet.core.wire.gob_decode import Decoder
from weavenet.core.wire.gob_types import (
    BOOL,
    BYTES,
    COMPLEX,
    FIRST_USER_ID,
    FLOAT,
    INT,
    MAX_INT,
    MAX_TYPE_ID,
    MAX_UINT,
    MIN_INT,
    STRING,
    UINT,
    WIRE_TYPE,
    Basic,
    GobEncodeError,
    GobError,
    GobType,
    Map,
    Slice,
    Struct,
    float_to_uint,
    put_int,
    put_uint,
    zero_value,
)

__all__ = [
    "BOOL",
    "BYTES",
    "COMPLEX",
    "FLOAT",
    "INT",
    "STRING",
    "UINT",
    "Basic",
    "Decoder",
    "Encoder",
    "GobEncodeError",
    "GobError",
    "GobType",
    "Map",
    "Slice",
    "Struct",
    "decode_value",
    "encode_value",
    "zero_value",
]


# (first type id, type) -> the definitions a fresh stream sends for it, and the ids they
# assign: encoding them is most of the cost of a one-value stream (e.g. a persisted ring).
_FRESH_DEFINITIONS: dict[tuple[int, GobType], tuple[bytes, dict[GobType, int]]] = {}


class Encoder:
    """One gob stream: type definitions are sent once per Encoder, as Go does."""

    def __init__(self, first_id: int = 65) -> None:
        if not FIRST_USER_ID <= first_id <= MAX_TYPE_ID:
            raise ValueError(f"first gob type id must be >= {FIRST_USER_ID}, got {first_id}")
        self._next_id = first_id
        self._ids: dict[GobType, int] = {}
        self._sent: set[int] = set()

    def encode(self, typ: GobType, value: object) -> bytes:
        """Bytes of one Go Encode() call: any new type-definition messages, then the value message.

        Raises GobEncodeError if ``value`` does not fit ``typ``; the stream is unchanged then.
        """
        fresh = not self._ids
        first_id = self._next_id
        cached = _FRESH_DEFINITIONS.get((first_id, typ)) if fresh else None
        if cached is not None:  # a new stream always starts with the same definitions
            definitions, ids = cached
            self._ids = dict(ids)
            self._sent = set(ids.values())
            self._next_id = first_id + len(ids)
        else:
            self._assign(typ)
        try:
            body = self._value_message(typ, value)
        except GobEncodeError:
            if cached is not None:  # as if nothing happened: the stream is still fresh
                self._ids, self._sent, self._next_id = {}, set(), first_id
            raise
        out = bytearray()
        if cached is not None:
            out += definitions
        else:
            self._send_type(out, typ)
            if fresh:
                _FRESH_DEFINITIONS[(first_id, typ)] = (bytes(out), dict(self._ids))
        _frame(out, body)
        return bytes(out)

    def _value_message(self, typ: GobType, value: object) -> bytearray:
        body = bytearray()
        put_int(body, self._id(typ))
        if isinstance(typ, Struct):
            self._struct(body, typ, value)
        else:
            body.append(0)  # singleton: field delta 0
            self._value(body, typ, value)
        return body

    # -- type ids and definitions ---------------------------------------------------

    def _id(self, typ: GobType) -> int:
        return typ.id if isinstance(typ, Basic) else self._ids[typ]

    def _new_id(self, typ: GobType) -> None:
        if self._next_id > MAX_TYPE_ID:
            raise GobEncodeError("gob: out of type ids")
        self._ids[typ] = self._next_id
        self._next_id += 1

    def _assign(self, typ: GobType) -> None:
        """Number new types in the order Go's type.go newTypeObject does."""
        if isinstance(typ, Basic) or typ in self._ids:
            return
        if isinstance(typ, Struct):
            self._new_id(typ)
            for _, ft in typ.fields:
                self._assign(ft)
        elif isinstance(typ, Slice):
            self._assign(typ.elem)
            self._new_id(typ)
        elif isinstance(typ, Map):
            self._assign(typ.key)
            self._assign(typ.elem)
            self._new_id(typ)
        else:
            raise GobEncodeError(f"gob: not a gob type: {typ!r}")

    def _send_type(self, out: bytearray, typ: GobType) -> None:
        """Definition of ``typ`` then of its inner types, each once (Go's sendType)."""
        if isinstance(typ, Basic) or self._ids[typ] in self._sent:
            return
        tid = self._ids[typ]
        body = bytearray()
        put_int(body, -tid)
        self._struct(body, WIRE_TYPE, self._wire_type(typ, tid))
        _frame(out, body)
        self._sent.add(tid)
        if isinstance(typ, Struct):
            for _, ft in typ.fields:
                self._send_type(out, ft)
        elif isinstance(typ, Slice):
            self._send_type(out, typ.elem)
        elif isinstance(typ, Map):
            self._send_type(out, typ.key)
            self._send_type(out, typ.elem)

    def _wire_type(self, typ: GobType, tid: int) -> dict[str, object]:
        """The ``wireType`` value describing ``typ`` (CommonType.Name omitted when empty)."""
        if isinstance(typ, Struct):
            fields = [{"Name": name, "Id": self._id(ft)} for name, ft in typ.fields]
            common = {"Name": typ.name, "Id": tid}
            return {"StructT": {"CommonType": common, "Field": fields}}
        if isinstance(typ, Slice):
            common = {"Name": typ.name, "Id": tid}
            return {"SliceT": {"CommonType": common, "Elem": self._id(typ.elem)}}
        assert isinstance(typ, Map)
        common = {"Name": typ.name, "Id": tid}
        key, elem = self._id(typ.key), self._id(typ.elem)
        return {"MapT": {"CommonType": common, "Key": key, "Elem": elem}}

    # -- values -------------------------------------------------------------------------

    def _struct(self, out: bytearray, typ: Struct, value: object) -> None:
        """Struct fields as (delta, value) pairs, zero fields omitted, then 00."""
        fields = _as_struct(typ, value)
        last = -1
        for i, (name, ft) in enumerate(typ.fields):
            v = fields.get(name)
            if v is None or _is_omitted_zero(ft, v):
                continue
            put_uint(out, i - last)
            last = i
            self._value(out, ft, v)
        out.append(0)

    def _value(self, out: bytearray, typ: GobType, value: object) -> None:
        """One value, always sent (Go's sendZero for singletons and elements)."""
        if isinstance(typ, Basic):
            _basic(out, typ, value)
        elif isinstance(typ, Struct):
            if value is None:
                raise GobEncodeError(f"gob: nil {typ.name or 'struct'} value cannot be sent")
            self._struct(out, typ, value)
        elif isinstance(typ, Slice):
            items = _as_list(typ, value)
            put_uint(out, len(items))
            for item in items:
                self._value(out, typ.elem, item)
        elif isinstance(typ, Map):
            entries = _as_map(typ, value)
            put_uint(out, len(entries))
            for k, v in entries.items():
                self._value(out, typ.key, k)
                self._value(out, typ.elem, v)
        else:
            raise GobEncodeError(f"gob: not a gob type: {typ!r}")


def _frame(out: bytearray, body: bytearray) -> None:
    put_uint(out, len(body))
    out += body


def _as_struct(typ: Struct, value: object) -> Mapping[str, object]:
    if isinstance(value, tuple):  # the hashable form used for struct map keys
        value = dict(value)
    if not isinstance(value, Mapping):
        raise GobEncodeError(f"gob: struct {typ.name!r} wants a dict, got {type(value).__name__}")
    unknown = set(value) - {name for name, _ in typ.fields}
    if unknown:
        raise GobEncodeError(f"gob: struct {typ.name!r} has no fields {sorted(map(str, unknown))}")
    return value


def _as_list(typ: Slice, value: object) -> Sequence[object]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return value
    raise GobEncodeError(f"gob: slice {typ.name!r} wants a list, got {type(value).__name__}")


def _as_map(typ: Map, value: object) -> Mapping[object, object]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise GobEncodeError(f"gob: map {typ.name!r} wants a dict, got {type(value).__name__}")


def _is_omitted_zero(typ: GobType, value: object) -> bool:
    """Go leaves zero basics and empty slices out of structs (maps only when nil)."""
    if isinstance(typ, Basic):
        if (typ.id == 1) != isinstance(value, bool):
            return False  # a bool for a number or vice versa: let _basic reject it
        return value == zero_value(typ)
    if isinstance(typ, Slice):
        return isinstance(value, list | tuple) and len(value) == 0
    return False


def _basic(out: bytearray, typ: Basic, value: object) -> None:
    if typ.id == 1:
        if not isinstance(value, bool):
            raise GobEncodeError(f"gob: bool wanted, got {value!r}")
        out.append(1 if value else 0)
    elif typ.id in (2, 3):
        if not isinstance(value, int) or isinstance(value, bool):
            raise GobEncodeError(f"gob: {typ.name} wanted, got {value!r}")
        if typ.id == 2 and MIN_INT <= value <= MAX_INT:
            put_int(out, value)
        elif typ.id == 3 and 0 <= value <= MAX_UINT:
            put_uint(out, value)
        else:
            raise GobEncodeError(f"gob: {value} out of range for {typ.name}")
    elif typ.id in (5, 6):
        data = _bytes_of(typ, value)
        put_uint(out, len(data))
        out += data
    elif typ.id == 4 and isinstance(value, int | float) and not isinstance(value, bool):
        put_uint(out, float_to_uint(float(value)))
    elif typ.id == 7 and isinstance(value, int | float | complex) and not isinstance(value, bool):
        c = complex(value)
        put_uint(out, float_to_uint(c.real))
        put_uint(out, float_to_uint(c.imag))
    else:
        raise GobEncodeError(f"gob: cannot encode {value!r} as {typ.name}")


def _bytes_of(typ: Basic, value: object) -> bytes:
    if typ.id == 6 and isinstance(value, str):
        try:
            return value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise GobEncodeError(f"gob: unencodable string {value!r}") from exc
    if typ.id == 5 and isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise GobEncodeError(f"gob: {typ.name} wanted, got {type(value).__name__}")


def encode_value(typ: GobType, value: object, first_id: int = 65) -> bytes:
    """A complete fresh gob stream holding one value (type definitions included)."""
    return Encoder(first_id).encode(typ, value)


def decode_value(data: bytes, typ: GobType, *, fill_zero: bool = True) -> object:
    """Decode a fresh stream holding exactly one value; trailing data is an error."""
    decoder = Decoder(data)
    value = decoder.decode(typ, fill_zero=fill_zero)
    if not decoder.at_end():
        raise GobError("gob: trailing data after value")
    return value
