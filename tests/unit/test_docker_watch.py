"""The Docker event watcher, fed by a fake event source: dispatch, resync, reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from weavenet.io.docker_api import DockerUnavailable
from weavenet.io.docker_watch import DockerWatcher, Listener


class Source:
    """Each connection: the running ids, then the events of one stream (or a failure)."""

    def __init__(self, script: list[Any], sinces: list[float | None]) -> None:
        self.url = "unix:///fake.sock"
        self.script = script
        self.sinces = sinces

    async def container_events(self, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        self.sinces.append(since)
        step = self.script.pop(0) if self.script else []
        if isinstance(step, Exception):
            raise step
        for event in step:
            yield event
        if not self.script:
            await asyncio.Event().wait()  # the last stream stays open

    async def running_ids(self) -> list[str]:
        return ["running1"]

    async def close(self) -> None:
        pass


def test_events_reach_the_listeners_and_a_lost_stream_is_resumed() -> None:
    seen: list[tuple[str, str]] = []
    sinces: list[float | None] = []
    script: list[Any] = [
        DockerUnavailable("unix:///fake.sock", "refused"),  # daemon not up yet
        [
            {"Action": "start", "id": "c1"},
            {"Action": "die", "id": "c1"},
            {"Action": "destroy", "id": "c1"},
        ],
        [{"status": "start", "id": "c2"}],
    ]

    async def started(cid: str) -> None:
        seen.append(("start", cid))
        if cid == "c2":
            done.set()

    async def destroyed(cid: str) -> None:
        seen.append(("destroy", cid))

    async def broken(cid: str) -> None:
        raise RuntimeError("a listener failing must not stop the watch")

    async def case() -> None:
        watcher = DockerWatcher(
            None,
            [Listener(broken), Listener(started, destroyed)],
            lambda url: Source(script, sinces),
        )
        watcher.start()
        await asyncio.wait_for(done.wait(), 20)
        await watcher.stop()

    done = asyncio.Event()
    asyncio.run(case())
    # every connection resyncs (the first one, whose stream then fails, too)
    assert seen == [("start", "running1"), ("start", "running1"), ("start", "c1"),
                    ("destroy", "c1"), ("start", "running1"), ("start", "c2")]  # fmt: skip
    assert len(sinces) == 3 and all(s is not None for s in sinces)
    assert sinces[2] >= sinces[1], "the replay starts from when the stream was lost"  # type: ignore[operator]


class Absent:
    """No daemon: every call fails as DockerApi's do when nobody answers."""

    url = "unix:///absent.sock"

    def __init__(self, attempts: list[int]) -> None:
        self.attempts = attempts

    async def container_events(self, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        self.attempts.append(1)
        raise DockerUnavailable(self.url, "no such file")
        yield {}  # an async generator, as DockerApi's

    async def running_ids(self) -> list[str]:
        raise DockerUnavailable(self.url, "no such file")

    async def close(self) -> None:
        pass


def test_an_absent_daemon_leaves_no_unretrieved_task_errors() -> None:
    import gc

    attempts: list[int] = []
    unretrieved: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: unretrieved.append(ctx))
        watcher = DockerWatcher(None, [], connect=lambda _url: Absent(attempts))
        watcher.start()
        while len(attempts) < 2:  # two connection attempts, with the back-off between
            await asyncio.sleep(0.05)
        await watcher.stop()
        gc.collect()  # an unretrieved task exception is reported when the task is collected
        await asyncio.sleep(0)

    asyncio.run(main())
    assert [(ctx.get("message"), repr(ctx.get("future"))[:200]) for ctx in unretrieved] == []


def test_no_daemon_no_resync() -> None:
    """With no daemon, retries must not run the listeners' resync (the attachment
    keeper's is a full reconcile) every time."""
    attempts: list[int] = []
    resyncs: list[int] = []

    async def resynced() -> None:
        resyncs.append(1)

    async def main() -> None:
        listener = Listener(None, None, resynced)
        watcher = DockerWatcher(None, [listener], connect=lambda _url: Absent(attempts))
        watcher.start()
        while len(attempts) < 2:
            await asyncio.sleep(0.05)
        await watcher.stop()

    asyncio.run(main())
    assert resyncs == []
