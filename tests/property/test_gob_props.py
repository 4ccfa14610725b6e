"""Gob codec properties: round trips over random type trees; garbage raises only GobError."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from weavenet.core.wire.gob import (
    BOOL,
    BYTES,
    FLOAT,
    INT,
    STRING,
    UINT,
    Decoder,
    Encoder,
    GobError,
    GobType,
    Map,
    Slice,
    Struct,
    decode_value,
    encode_value,
)
from weavenet.core.wire.gob_types import MAX_INT, MAX_UINT, MIN_INT, freeze, zero_value

NAMES = st.text(alphabet=string.ascii_letters, min_size=1, max_size=5)
TYPE_NAMES = st.one_of(st.just(""), NAMES)
BASICS = st.sampled_from([BOOL, INT, UINT, FLOAT, STRING, BYTES])
KEY_BASICS = st.sampled_from([BOOL, INT, UINT, STRING, BYTES])


def structs(children: st.SearchStrategy[GobType]) -> st.SearchStrategy[Struct]:
    fields = st.lists(st.tuples(NAMES, children), max_size=4, unique_by=lambda f: f[0])
    return st.builds(Struct, TYPE_NAMES, fields.map(tuple))


KEY_TYPES = st.one_of(KEY_BASICS, structs(KEY_BASICS))
TYPES: st.SearchStrategy[GobType] = st.recursive(
    BASICS,
    lambda children: st.one_of(
        st.builds(Slice, children, TYPE_NAMES),
        st.builds(Map, KEY_TYPES, children, TYPE_NAMES),
        structs(children),
    ),
    max_leaves=10,
)

_BASIC_VALUES: dict[GobType, st.SearchStrategy[object]] = {
    BOOL: st.booleans(),
    INT: st.integers(MIN_INT, MAX_INT),
    UINT: st.integers(0, MAX_UINT),
    FLOAT: st.floats(allow_nan=False),
    STRING: st.text(max_size=8),
    BYTES: st.binary(max_size=8),
}


def values(typ: GobType, in_struct: bool = False) -> st.SearchStrategy[object]:
    """Python values of ``typ``; inside structs, maps and structs may be None (nil)."""
    if typ in _BASIC_VALUES:
        return _BASIC_VALUES[typ]
    if isinstance(typ, Slice):
        return st.lists(values(typ.elem), max_size=3)
    if isinstance(typ, Map):
        strategy = st.dictionaries(keys(typ.key), values(typ.elem), max_size=3)
    else:
        assert isinstance(typ, Struct)
        optional: dict[object, st.SearchStrategy[object]] = {
            name: values(ft, in_struct=True) for name, ft in typ.fields
        }
        strategy = st.fixed_dictionaries({}, optional=optional)
    return st.one_of(st.none(), strategy) if in_struct else strategy


def keys(typ: GobType) -> st.SearchStrategy[object]:
    """Map keys: struct keys are full tuples of pairs in field order (what decode gives)."""
    if isinstance(typ, Struct):
        pairs = [st.tuples(st.just(name), _BASIC_VALUES[ft]) for name, ft in typ.fields]
        return st.tuples(*pairs)
    return _BASIC_VALUES[typ]


def expected(typ: GobType, value: object) -> object:
    """What decode(typ) must return for an encoded ``value`` (absent/nil -> zero)."""
    if value is None:
        return zero_value(typ)
    if isinstance(typ, Struct):
        assert isinstance(value, dict)
        return {name: expected(ft, value.get(name)) for name, ft in typ.fields}
    if isinstance(typ, Slice):
        assert isinstance(value, list)
        return [expected(typ.elem, v) for v in value]
    if isinstance(typ, Map):
        assert isinstance(value, dict)
        return {k: expected(typ.elem, v) for k, v in value.items()}
    return value


def filled(typ: GobType, value: object) -> object:
    """Fill a decode_any result (present fields only) up to the shape decode(typ) gives."""
    if isinstance(typ, Struct):
        assert isinstance(value, dict)
        return {
            name: filled(ft, value[name]) if name in value else zero_value(ft)
            for name, ft in typ.fields
        }
    if isinstance(typ, Slice):
        assert isinstance(value, list)
        return [filled(typ.elem, v) for v in value]
    if isinstance(typ, Map):
        assert isinstance(value, dict)
        return {_filled_key(typ.key, k): filled(typ.elem, v) for k, v in value.items()}
    return value


def _filled_key(typ: GobType, key: object) -> object:
    if isinstance(typ, Struct):
        assert isinstance(key, tuple)
        return freeze(filled(typ, dict(key)))
    return key


TYPED_VALUES = TYPES.flatmap(lambda t: st.tuples(st.just(t), values(t)))


@settings(deadline=None, max_examples=300)
@given(TYPED_VALUES, st.integers(64, 1000))
def test_round_trip(typed: tuple[GobType, object], first_id: int) -> None:
    typ, value = typed
    stream = encode_value(typ, value, first_id=first_id)
    assert decode_value(stream, typ) == expected(typ, value)
    assert filled(typ, Decoder(stream).decode_any()) == expected(typ, value)
    # Without zero filling, nil/absent stays absent: re-encoding gives the same bytes.
    sparse = decode_value(stream, typ, fill_zero=False)
    assert encode_value(typ, sparse, first_id=first_id) == stream


@settings(deadline=None, max_examples=100)
@given(st.lists(TYPED_VALUES, min_size=1, max_size=4))
def test_one_stream_many_values(items: list[tuple[GobType, object]]) -> None:
    encoder = Encoder()
    stream = b"".join(encoder.encode(typ, value) for typ, value in items)
    decoder = Decoder(stream)
    for typ, value in items:
        assert decoder.decode(typ) == expected(typ, value)
    assert decoder.at_end()


def _decode_all(data: bytes, typ: GobType | None) -> None:
    """Decode values until the end; only GobError may escape."""
    decoder = Decoder(data)
    try:
        while not decoder.at_end():
            if typ is None:
                decoder.decode_any()
            else:
                decoder.decode(typ)
    except GobError:
        pass


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=64), st.one_of(st.none(), TYPES))
def test_arbitrary_bytes_raise_only_gob_error(data: bytes, typ: GobType | None) -> None:
    _decode_all(data, typ)


@settings(deadline=None, max_examples=200)
@given(TYPED_VALUES, st.binary(max_size=32), st.booleans())
def test_garbage_after_a_valid_prefix(
    typed: tuple[GobType, object], garbage: bytes, typed_decode: bool
) -> None:
    typ, value = typed
    _decode_all(encode_value(typ, value) + garbage, typ if typed_decode else None)


@settings(deadline=None, max_examples=300)
@given(TYPED_VALUES, st.data())
def test_mutated_streams_raise_only_gob_error(
    typed: tuple[GobType, object], data: st.DataObject
) -> None:
    typ, value = typed
    stream = bytearray(encode_value(typ, value))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(stream) - 1))
        action = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        byte = data.draw(st.integers(0, 255))
        if action == "replace":
            stream[pos] = byte
        elif action == "delete":
            del stream[pos]
        else:
            stream.insert(pos, byte)
        if not stream:
            break
    _decode_all(bytes(stream), typ)
    _decode_all(bytes(stream), None)
