"""Docker's event stream, watched on the router's loop: containers' life cycle.

Every container event that matters is handed to the listeners:

- `start` (docker run/start/restart, a daemon restart with a restart policy): the
  container may live in a new network namespace; the attachment keeper re-attaches it
  (same addresses, same MAC) and the plugin gives a plugin container its address back;
- `destroy` (docker rm): the container is gone for good; its addresses are freed and its
  names removed (the keeper drops its attachment, the plugin frees what it held).

When the stream ends (the daemon stopped) or cannot be opened, the watcher tries again
with a growing pause (0.2 s to 2 s), asking the daemon to replay the events since the
stream was lost (a restarted daemon starts its restart-policy containers while we are
still reconnecting); each time it (re)connects it also resyncs: every listener sees a
`start` for each running container and the keeper reconciles. Handling an event twice is
harmless: every listener makes things match, it does not toggle them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import msgspec

from weavenet.io.docker_api import DockerApi, DockerUnavailable

log = logging.getLogger("weavenet.docker")

RETRY_MIN, RETRY_MAX = 0.2, 2.0
CLOCK_MARGIN = 1.0  # seconds replayed before the loss (the daemon's clock is ours, roughly)
Callback = Callable[[str], Awaitable[None]]


class Listener(msgspec.Struct):
    """What to do for a container id on each kind of event (None: nothing)."""

    started: Callback | None = None
    destroyed: Callback | None = None
    resynced: Callable[[], Awaitable[None]] | None = None


class EventSource(Protocol):
    """What the watcher uses of io.docker_api.DockerApi."""

    url: str

    def container_events(self, since: float | None = None) -> AsyncIterator[dict[str, Any]]: ...

    async def running_ids(self) -> list[str]: ...

    async def close(self) -> None: ...


class DockerWatcher(msgspec.Struct):
    url: str | None
    listeners: Sequence[Listener]
    connect: Callable[[str | None], EventSource] = DockerApi
    events_seen: int = 0
    connected: bool = False
    _task: asyncio.Task[None] | None = None

    _lost_at: float | None = None

    def start(self) -> None:
        self._lost_at = time.time() - CLOCK_MARGIN  # what happened while we started up
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        pause, told = RETRY_MIN, False
        while True:
            api = self.connect(self.url)
            try:
                await self._follow(api)
                pause, told = RETRY_MIN, False
            except DockerUnavailable as exc:
                if not told:
                    log.warning("Docker events: %s; retrying", exc)
                    told = True
            except Exception as exc:  # whatever happens, the watch goes on
                log.error("Docker events: %s: %s; reconnecting", type(exc).__name__, exc)
            finally:
                if self.connected:
                    self._lost_at = time.time() - CLOCK_MARGIN
                self.connected = False
                await api.close()
            await asyncio.sleep(pause)  # a back-off between reconnects, not a synchronisation
            pause = min(pause * 2, RETRY_MAX)

    async def _follow(self, api: EventSource) -> None:
        events = api.container_events(since=self._lost_at)
        first = asyncio.ensure_future(anext(events))  # subscribed before the resync
        await asyncio.sleep(0)
        try:
            await self._resync(api)
            self.connected = True
            log.info("Docker events: watching %s", api.url)
            event = await first
            while True:
                await self._dispatch(event)
                event = await anext(events)
        except StopAsyncIteration:
            log.info("Docker events: the stream from %s ended", api.url)
        finally:
            if first.done() and not first.cancelled():
                first.exception()  # the daemon's absence, reported once by run(), not by GC
            first.cancel()
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    async def _resync(self, api: EventSource) -> None:
        """Listeners catch up with the daemon, once it answers (the listing fails first
        while there is no daemon: no resync, e.g. a full reconcile, per retry)."""
        running = await api.running_ids()
        for listener in self.listeners:
            if listener.resynced is not None:
                await _guarded(listener.resynced(), "resync")
        for cid in running:
            for listener in self.listeners:
                if listener.started is not None:
                    await _guarded(listener.started(cid), f"start of {cid[:12]}")

    async def _dispatch(self, event: dict[str, Any]) -> None:
        self.events_seen += 1
        action = str(event.get("Action") or event.get("status") or "")
        cid = str(event.get("id") or (event.get("Actor") or {}).get("ID") or "")
        if not cid:
            return
        for listener in self.listeners:
            callback = {"start": listener.started, "destroy": listener.destroyed}.get(action)
            if callback is not None:
                started = time.perf_counter()
                await _guarded(callback(cid), f"{action} of {cid[:12]}")
                took = (time.perf_counter() - started) * 1000
                log.debug("Docker events: %s of %s took %.1f ms", action, cid[:12], took)


async def _guarded(call: Awaitable[None], what: str) -> None:
    """A listener's failure is logged; the watch goes on."""
    try:
        await call
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.error("Docker events: handling %s: %s", what, exc)
