"""Gob stream decoder (spec §11.3-§11.6).

Type-definition messages are collected as they arrive; ids are resolved lazily when
a value needs them, so a definition may refer to a type defined in a later message.
Every malformed input raises :class:`GobError`: counts are checked against the bytes
left in the message and value nesting is capped at :data:`MAX_DEPTH`.
"""

from __future__ import annotations

from weavenet.core.wire.gob_types import (
    BASIC_BY_ID,
    FIRST_USER_ID,
    INTERFACE_ID,
    MAX_TYPE_ID,
    WIRE_TYPE,
    Basic,
    GobError,
    GobType,
    Map,
    Slice,
    Struct,
    freeze,
    uint_to_float,
    uint_to_int,
    zero_value,
)
from weavenet.core.wire.gob_wire import (
    BOOT,
    WArray,
    Wire,
    WMap,
    WOpaque,
    WSlice,
    WStruct,
    wire_from_def,
)

__all__ = ["Decoder", "WArray", "WMap", "WOpaque", "WSlice", "WStruct", "Wire"]

MAX_DEPTH = 100
MAX_MESSAGE = 1 << 30  # Go's tooBig


class _Reader:
    """Reads values from one message, ``data[pos:end]``."""

    def __init__(self, data: bytes, pos: int, end: int, table: dict[int, Wire], fill: bool):
        self.data = data
        self.pos = pos
        self.end = end
        self.table = table
        self.fill = fill

    def remaining(self) -> int:
        return self.end - self.pos

    def byte(self) -> int:
        if self.pos >= self.end:
            raise GobError("gob: unexpected end of message")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def raw(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise GobError(f"gob: length {n} runs past the end of the message")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self) -> int:
        b = self.byte()
        if b < 0x80:
            return b
        n = 0x100 - b
        if n > 8:
            raise GobError(f"gob: invalid uint byte count {n}")
        return int.from_bytes(self.raw(n), "big")

    def sint(self) -> int:
        return uint_to_int(self.uint())

    def count(self) -> int:
        """An element count; every element takes at least one byte."""
        n = self.uint()
        if n > self.remaining():
            raise GobError(f"gob: count {n} exceeds the {self.remaining()} bytes left")
        return n

    def top(self, wid: int, typ: GobType | None) -> object:
        """A top-level value: struct fields directly, anything else as a singleton."""
        if isinstance(self.table.get(wid), WStruct):
            return self.value(wid, typ, 0)
        if self.uint() != 0:
            raise GobError("gob: non-zero field delta for singleton value")
        return self.value(wid, typ, 0)

    def value(self, wid: int, typ: GobType | None, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise GobError("gob: values nested too deeply")
        if wid in BASIC_BY_ID:
            return self.basic(wid)
        wire = self.table.get(wid)
        if wire is None:
            if wid == INTERFACE_ID:
                raise GobError("gob: interface values are not supported")
            raise GobError(f"gob: undefined type id {wid}")
        if isinstance(wire, WStruct):
            return self.struct(wire, typ if isinstance(typ, Struct) else None, depth + 1)
        if isinstance(wire, WMap):
            return self.mapping(wire, typ if isinstance(typ, Map) else None, depth + 1)
        if isinstance(wire, WOpaque):
            return self.raw(self.count())
        elem = typ.elem if isinstance(typ, Slice) else None
        n = self.count()
        if isinstance(wire, WArray) and n != wire.length:
            raise GobError(f"gob: array length {n}, type says {wire.length}")
        return [self.value(wire.elem, elem, depth + 1) for _ in range(n)]

    def basic(self, wid: int) -> object:
        if wid == 1:
            return self.uint() != 0
        if wid == 2:
            return self.sint()
        if wid == 3:
            return self.uint()
        if wid == 4:
            return uint_to_float(self.uint())
        if wid == 5:
            return self.raw(self.count())
        if wid == 6:
            return self.raw(self.count()).decode("utf-8", "surrogateescape")
        real = uint_to_float(self.uint())
        return complex(real, uint_to_float(self.uint()))

    def struct(self, wire: WStruct, typ: Struct | None, depth: int) -> dict[str, object]:
        wanted = dict(typ.fields) if typ is not None else None
        got: dict[str, object] = {}
        fieldnum = -1
        while (delta := self.uint()) != 0:
            fieldnum += delta
            if fieldnum >= len(wire.fields):
                raise GobError(f"gob: field number {fieldnum} out of range for {wire.name!r}")
            name, fid = wire.fields[fieldnum]
            if wanted is None:
                got[name] = self.value(fid, None, depth)
            elif name in wanted:
                got[name] = self.value(fid, wanted[name], depth)
            else:
                self.value(fid, None, depth)  # skip a field the caller does not want
        if typ is None:
            return got
        if self.fill:
            return {n: got[n] if n in got else zero_value(t) for n, t in typ.fields}
        return {n: got[n] for n, _ in typ.fields if n in got}

    def mapping(self, wire: WMap, typ: Map | None, depth: int) -> dict[object, object]:
        kt, vt = (typ.key, typ.elem) if typ is not None else (None, None)
        result: dict[object, object] = {}
        for _ in range(self.count()):
            key = freeze(self.value(wire.key, kt, depth))
            result[key] = self.value(wire.elem, vt, depth)
        return result


# Peers re-send the same few type definitions in every payload: parse each once.
# (A pure memo of a pure function; bounded, so hostile input cannot grow it.)
_DEFINITIONS: dict[bytes, Wire] = {}
_MAX_CACHED_DEFINITIONS = 256


def _header_uint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of a gob uint at ``pos``; (0, pos) where none can be read,
    which every caller treats as "take the slow path"."""
    if pos >= len(data):
        return 0, pos
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    size = 0x100 - first
    if size > 8 or pos + 1 + size > len(data):
        return 0, pos
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def _parse_definition(reader: _Reader) -> Wire:
    boot = _Reader(reader.data, reader.pos, reader.end, BOOT, False)
    definition = boot.value(16, WIRE_TYPE, 0)
    assert isinstance(definition, dict)
    wire = wire_from_def(definition)
    if boot.remaining():
        raise GobError("gob: extra data after type definition")
    return wire


class Decoder:
    """Reads a complete gob stream held in memory (each weave payload is a fresh stream)."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._types: dict[int, Wire] = {}
        self._complete: set[int] = set()  # ids whose whole type graph is defined

    def at_end(self) -> bool:
        """True when no bytes (hence no messages) are left."""
        return self._pos >= len(self._data)

    def decode(self, typ: GobType, *, fill_zero: bool = True) -> object:
        """The next top-level value, converted to ``typ`` (struct fields matched by name).

        Wire fields ``typ`` lacks are skipped; fields absent on the wire get zero values,
        or are left out of the dict when ``fill_zero`` is false (tells nil from empty).
        """
        wid, reader = self._next_value(fill_zero)
        self._check_compatible(typ, wid)
        value = reader.top(wid, typ)
        self._finish(reader)
        return value

    def decode_any(self) -> object:
        """The next value, shaped by the wire type alone (structs: present fields only)."""
        wid, reader = self._next_value(False)
        value = reader.top(wid, None)
        self._finish(reader)
        return value

    def next_layout(self) -> tuple[int, Wire | None]:
        """Read any type definitions ahead of the next value; return its type id and wire
        type (None for basic types) without consuming the value."""
        wid, _ = self._next_value(False)  # leaves the position at the value message
        return wid, self._types.get(wid)

    def wire_type(self, tid: int) -> Wire | None:
        return self._types.get(tid)

    def take_raw(self) -> bytes:
        """Consume the next value message; return its bytes after the type id."""
        _, reader = self._next_value(False)
        self._pos = reader.end
        return reader.data[reader.pos : reader.end]

    def skip(self) -> None:
        """Pass over the next value without decoding it (its types must be defined)."""
        _, reader = self._next_value(False)
        self._pos = reader.end

    @property
    def data(self) -> bytes:
        return self._data

    def next_span(self) -> tuple[int, int, int]:
        """Read any type definitions ahead of the next value and return (its type id, where
        its bytes after the type id start, where its message ends) without consuming it;
        :meth:`skip_to` the end to consume it. Only message headers are read here for
        definitions seen before (by any Decoder) and values of known types: weave's
        topology payloads are fresh streams of a few small values each, whose time went
        into the generic path's per-message objects."""
        data = self._data
        while True:
            length, start = _header_uint(data, self._pos)
            end = start + length
            code, body = _header_uint(data, start)
            if not 0 < length <= MAX_MESSAGE or end > len(data) or not start < body <= end:
                break  # anything unusual: the generic path says what is wrong
            if not code & 1:
                tid = code >> 1
                if tid not in self._complete:
                    self._check_defined(tid)
                return tid, body, end
            defined = (code >> 1) + 1  # the sint -defined, as the generic path reads it
            wire = _DEFINITIONS.get(data[body:end])
            if (
                wire is None
                or defined in self._types
                or not FIRST_USER_ID <= defined <= MAX_TYPE_ID
            ):
                break
            self._types[defined] = wire
            self._pos = end
        wid, reader = self._next_value(False)
        return wid, reader.pos, reader.end

    def skip_to(self, end: int) -> None:
        """Consume up to ``end``, the end of a message :meth:`next_span` returned."""
        self._pos = end

    def _finish(self, reader: _Reader) -> None:
        if reader.remaining():
            raise GobError(f"gob: {reader.remaining()} extra bytes after value")
        self._pos = reader.end

    def _message(self, fill: bool, table: dict[int, Wire]) -> _Reader:
        outer = _Reader(self._data, self._pos, len(self._data), table, fill)
        length = outer.uint()
        if length == 0 or length > outer.remaining() or length > MAX_MESSAGE:
            raise GobError(f"gob: bad message length {length}")
        return _Reader(self._data, outer.pos, outer.pos + length, table, fill)

    def _next_value(self, fill: bool) -> tuple[int, _Reader]:
        while True:
            if self.at_end():
                raise GobError("gob: stream ended before a value")
            reader = self._message(fill, self._types)
            tid = reader.sint()
            if tid > 0:
                self._check_defined(tid)
                return tid, reader
            if tid == 0:
                raise GobError("gob: type id 0")
            self._define(-tid, reader)

    def _define(self, tid: int, reader: _Reader) -> None:
        if tid < FIRST_USER_ID or tid > MAX_TYPE_ID or tid in self._types:
            raise GobError(f"gob: duplicate or invalid type id {tid} received")
        body = reader.data[reader.pos : reader.end]
        wire = _DEFINITIONS.get(body)
        if wire is None:
            wire = _parse_definition(reader)
            if len(_DEFINITIONS) >= _MAX_CACHED_DEFINITIONS:
                _DEFINITIONS.clear()
            _DEFINITIONS[body] = wire
        self._types[tid] = wire
        self._pos = reader.end

    def _check_defined(self, tid: int) -> None:
        """Every id reachable from ``tid`` must be known (Go checks this when compiling).

        Definitions never change, so ids that passed once are remembered.
        """
        if tid in self._complete:
            return
        stack, seen = [tid], set()
        while stack:
            t = stack.pop()
            if t in seen or t in self._complete or t in BASIC_BY_ID or t == INTERFACE_ID:
                continue
            seen.add(t)
            wire = self._types.get(t)
            if wire is None:
                raise GobError(f"gob: undefined type id {t}")
            if isinstance(wire, WStruct):
                stack.extend(fid for _, fid in wire.fields)
            elif isinstance(wire, WMap):
                stack.extend((wire.key, wire.elem))
            elif isinstance(wire, WSlice | WArray):
                stack.append(wire.elem)
        self._complete |= seen

    def _check_compatible(self, typ: GobType, wid: int) -> None:
        """Go's assignability rules (decode.go compatibleType); recursion follows ``typ``."""
        if isinstance(typ, Basic):
            if wid != typ.id:
                raise GobError(f"gob: wire type {self._describe(wid)} does not fit {typ!r}")
            return
        wire = self._types.get(wid)
        if isinstance(typ, Slice) and isinstance(wire, WSlice):
            self._check_compatible(typ.elem, wire.elem)
        elif isinstance(typ, Map) and isinstance(wire, WMap):
            self._check_compatible(typ.key, wire.key)
            self._check_compatible(typ.elem, wire.elem)
        elif isinstance(typ, Struct) and isinstance(wire, WStruct):
            self._check_struct(typ, wire)
        else:
            raise GobError(f"gob: wire type {self._describe(wid)} does not fit {typ!r}")

    def _check_struct(self, typ: Struct, wire: WStruct) -> None:
        wanted = dict(typ.fields)
        matched = 0
        for name, fid in wire.fields:
            if name in wanted:
                self._check_compatible(wanted[name], fid)
                matched += 1
        if matched == 0 and typ.fields and wire.fields:
            raise GobError(f"gob: no fields of {wire.name!r} match struct {typ.name!r}")

    def _describe(self, wid: int) -> str:
        if wid in BASIC_BY_ID:
            return BASIC_BY_ID[wid].name
        wire = self._types.get(wid)
        return f"{type(wire).__name__[1:].lower()} {wire.name!r} (id {wid})" if wire else str(wid)
