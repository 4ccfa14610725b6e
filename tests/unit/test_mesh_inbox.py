"""The mesh inbox: bytes fed in arrival order, in CPU-bounded slices with other
callbacks running between them, and reading held while a connection's backlog is big."""

from __future__ import annotations

import asyncio

from weavenet.io.mesh_inbox import HOLD_BYTES, SLICE, Inbox


class FakeTransport:
    """The collaborator's side: counts pause/resume calls."""

    def __init__(self) -> None:
        self.paused = False
        self.pauses = 0

    def pause_reading(self) -> None:
        self.paused, self.pauses = True, self.pauses + 1

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return False


class Recorder:
    def __init__(self, loop: asyncio.AbstractEventLoop, cost: float = 0.0) -> None:
        self.events: list[object] = []
        self.now = 0.0
        self.cost = cost  # CPU each feed "uses", on the inbox's clock
        self.inbox = Inbox(loop, self.feed, lambda: self.events.append("after"), self.clock)

    def clock(self) -> float:
        return self.now

    def feed(self, conn_id: int, data: bytes) -> None:
        self.now += self.cost
        self.events.append((conn_id, data))


def _drain(loop: asyncio.AbstractEventLoop, inbox: Inbox) -> None:
    async def until_empty() -> None:
        while inbox.pending():
            await asyncio.sleep(0)
        await asyncio.sleep(0)

    loop.run_until_complete(until_empty())


def test_bytes_are_fed_per_connection_in_arrival_order(loop: asyncio.AbstractEventLoop) -> None:
    rec, t = Recorder(loop), FakeTransport()
    for conn_id, data in ((1, b"a"), (2, b"x"), (1, b"b"), (3, b"q"), (2, b"y")):
        rec.inbox.put(conn_id, data, t)  # type: ignore[arg-type]
    _drain(loop, rec.inbox)
    assert rec.events == [(1, b"ab"), (2, b"xy"), (3, b"q"), "after"]


def test_a_slice_ends_after_its_cpu_and_other_callbacks_run_in_between(
    loop: asyncio.AbstractEventLoop,
) -> None:
    rec, t = Recorder(loop, cost=SLICE / 2), FakeTransport()
    for conn_id in range(1, 6):
        rec.inbox.put(conn_id, b"m", t)  # type: ignore[arg-type]
    loop.call_soon(lambda: loop.call_soon(rec.events.append, "status"))  # ready meanwhile
    _drain(loop, rec.inbox)
    fed = [e for e in rec.events if isinstance(e, tuple)]
    assert [c for c, _ in fed] == [1, 2, 3, 4, 5]
    first_after = rec.events.index("after")
    assert rec.events[:first_after] == [(1, b"m"), (2, b"m")]  # two feeds use the slice
    assert rec.events.index("status") < rec.events.index((5, b"m"))
    assert rec.events.count("after") == 3  # effects executed once per slice


def test_a_big_backlog_holds_reading_until_fed(loop: asyncio.AbstractEventLoop) -> None:
    rec, t = Recorder(loop), FakeTransport()
    rec.inbox.put(7, b"x" * HOLD_BYTES, t)  # type: ignore[arg-type]
    assert not t.paused
    rec.inbox.put(7, b"y", t)  # type: ignore[arg-type]
    assert t.paused and t.pauses == 1
    rec.inbox.put(7, b"z", t)  # type: ignore[arg-type]
    assert t.pauses == 1
    _drain(loop, rec.inbox)
    assert not t.paused
    assert rec.events == [(7, b"x" * HOLD_BYTES + b"yz"), "after"]


def test_take_hands_over_what_is_queued(loop: asyncio.AbstractEventLoop) -> None:
    rec, t = Recorder(loop), FakeTransport()
    rec.inbox.put(4, b"last", t)  # type: ignore[arg-type]
    assert rec.inbox.take(4) == b"last"
    assert rec.inbox.take(4) == b""
    _drain(loop, rec.inbox)
    assert rec.events == []  # nothing fed twice, and no effects run for nothing
