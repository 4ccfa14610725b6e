"""A fresh gob stream's type definitions are memoised: the bytes must not change."""

from __future__ import annotations

import pytest

from weavenet.core.wire import gob
from weavenet.core.wire.gob import INT, STRING, Encoder, GobEncodeError, Map, Slice, Struct

INNER = Struct("Inner", (("N", INT),))
OUTER = Struct("Outer", (("Name", STRING), ("Items", Slice(INNER)), ("M", Map(STRING, INT))))
VALUE = {"Name": "x", "Items": [{"N": 1}, {"N": -2}], "M": {"a": 1}}


def stream(first_id: int = 65) -> list[bytes]:
    """Three values on one stream: definitions, then values only."""
    enc = Encoder(first_id)
    return [enc.encode(OUTER, VALUE), enc.encode(OUTER, VALUE), enc.encode(INNER, {"N": 3})]


def test_cached_streams_are_byte_identical_to_uncached_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gob, "_FRESH_DEFINITIONS", {})
    uncached = stream()
    assert gob._FRESH_DEFINITIONS  # the first stream filled the cache
    assert stream() == uncached  # now from the cache
    assert stream(80)[0] != uncached[0]  # ids depend on the first id: cached apart
    assert uncached[1] != uncached[0] and uncached[1].endswith(uncached[0][-20:])


def test_a_failed_encode_on_a_cached_type_leaves_the_stream_fresh() -> None:
    Encoder().encode(OUTER, VALUE)
    enc = Encoder()
    with pytest.raises(GobEncodeError):
        enc.encode(OUTER, {"Name": 5})
    assert enc.encode(OUTER, VALUE) == Encoder().encode(OUTER, VALUE)
