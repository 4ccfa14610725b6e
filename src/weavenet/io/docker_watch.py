"""Docker's event stream, watched on the router's loop: containers' life cycle.

Every container event that matters is handed to the listeners:

- `start` (docker run/start/restart, a daemon restart with a restart policy): the
  container may live in a new network namespace; the attachment keeper re-attaches it
  (same addresses, same MAC) and the plugin gives a plugin container its address back;
- `destroy` (docker rm): the container is gone for good; its addresses are freed and its
  names removed (the keeper drops its attachment, the plugin frees what it held).

When the stream ends (the daemon stopped) or cannot be opened, the watcher tries again
with a growing pause (0.2 s to 2 s); each time it (re)connects it resyncs: every listener
sees a `start` for each running container and the keeper reconciles, since events may
have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from weavenet.io.docker_api import DockerApi, DockerUnavailable

log = logging.getLogger("weavenet.docker")

RETRY_MIN, RETRY_MAX = 0.2, 2.0
Callback = Callable[[str], Awaitable[None]]


@dataclass
class Listener:
    """What to do for a container id on each kind of event (None: nothing)."""

    started: Callback | None = None
    destroyed: Callback | None = None
    resynced: Callable[[], Awaitable[None]] | None = None


@dataclass
class DockerWatcher:
    url: str | None
    listeners: Sequence[Listener]
    events_seen: int = 0
    connected: bool = False
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        pause, told = RETRY_MIN, False
        while True:
            api = DockerApi(self.url)
            try:
                await self._follow(api)
                pause, told = RETRY_MIN, False
            except DockerUnavailable as exc:
                if not told:
                    log.warning("Docker events: %s; retrying", exc)
                    told = True
            finally:
                self.connected = False
                await api.close()
            await asyncio.sleep(pause)  # a back-off between reconnects, not a synchronisation
            pause = min(pause * 2, RETRY_MAX)

    async def _follow(self, api: DockerApi) -> None:
        events = api.container_events()
        first = asyncio.ensure_future(anext(events))  # subscribed before the resync
        await asyncio.sleep(0)
        self.connected = True
        log.info("Docker events: watching %s", api.url)
        await self._resync(api)
        try:
            event = await first
            while True:
                await self._dispatch(event)
                event = await anext(events)
        except StopAsyncIteration:
            log.info("Docker events: the stream from %s ended", api.url)
        finally:
            first.cancel()
            await events.aclose()

    async def _resync(self, api: DockerApi) -> None:
        for listener in self.listeners:
            if listener.resynced is not None:
                await _guarded(listener.resynced(), "resync")
        for cid in await api.running_ids():
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
                await _guarded(callback(cid), f"{action} of {cid[:12]}")


async def _guarded(call: Awaitable[None], what: str) -> None:
    """A listener's failure is logged; the watch goes on."""
    try:
        await call
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.error("Docker events: handling %s: %s", what, exc)
