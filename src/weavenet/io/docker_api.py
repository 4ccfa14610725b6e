"""The Docker Engine API, through aiodocker: the one Docker client of weavenet.

The router uses `DockerApi` on its event loop (the plugin, the event watcher); the CLI and
the attachment observer (a worker thread) use the blocking helpers at the bottom, which
run one short-lived client in their own loop.

Where the daemon is: an explicit URL, else $DOCKER_HOST, else unix:///var/run/docker.sock
(as the docker CLI and Weave's script find it). The API version is pinned, so no request
is spent asking the daemon for it; 1.41 is Docker 20.10's and every later daemon's too.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncGenerator, Coroutine
from typing import Any, TypeVar

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
API_VERSION = "v1.41"
REQUEST_TIMEOUT = 10.0
T = TypeVar("T")


class DockerUnavailable(Exception):
    """No daemon answers at `where` (or it answered with an error other than 404)."""

    def __init__(self, where: str, why: str, status: int | None = None) -> None:
        super().__init__(f"cannot reach the Docker daemon at {where}: {why}")
        self.where = where
        self.status = status


def docker_host(url: str | None = None) -> str:
    """The daemon's address: `url`, else $DOCKER_HOST, else the default socket."""
    return url or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


class DockerApi:
    """A connection to one Docker daemon (create and use it on one event loop)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = docker_host(url)
        self._client: aiodocker.Docker | None = None

    def _docker(self) -> aiodocker.Docker:
        if self._client is None:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            self._client = aiodocker.Docker(url=self.url, api_version=API_VERSION, timeout=timeout)
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _call(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            return await call
        except DockerError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DockerUnavailable(self.url, str(exc) or type(exc).__name__) from exc

    async def inspect(self, name: str) -> dict[str, Any] | None:
        """GET /containers/NAME/json; None if there is no such container."""
        try:
            info: dict[str, Any] = await self._call(
                self._docker().containers.container(name).show()
            )
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise DockerUnavailable(self.url, exc.message, exc.status) from exc
        return info

    async def version(self) -> dict[str, Any]:
        """GET /version (DockerUnavailable when no daemon answers)."""
        try:
            info: dict[str, Any] = await self._call(self._docker().version())
        except DockerError as exc:
            raise DockerUnavailable(self.url, exc.message, exc.status) from exc
        return info

    async def running_ids(self) -> list[str]:
        """Full ids of the running containers."""
        try:
            found = await self._call(self._docker().containers.list())
        except DockerError as exc:
            raise DockerUnavailable(self.url, exc.message, exc.status) from exc
        return [c.id for c in found]

    async def network(self, name: str) -> dict[str, Any] | None:
        """GET /networks/NAME; None if there is no such network."""
        if not name:
            return None  # GET /networks/ would list them all
        try:
            net = await self._call(self._docker().networks.get(name))
            info: dict[str, Any] = await self._call(net.show())
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise DockerUnavailable(self.url, exc.message, exc.status) from exc
        return info

    async def create_network(self, config: dict[str, Any]) -> None:
        try:
            await self._call(self._docker().networks.create(config))
        except DockerError as exc:
            raise DockerUnavailable(self.url, exc.message, exc.status) from exc

    async def remove_network(self, name: str) -> bool:
        """Remove a network; False if there was none."""
        try:
            net = await self._call(self._docker().networks.get(name))
            await self._call(net.delete())
        except DockerError as exc:
            if exc.status == 404:
                return False
            raise DockerUnavailable(self.url, exc.message, exc.status) from exc
        return True

    async def container_events(self) -> AsyncGenerator[dict[str, Any], None]:
        """Container events until the stream ends (the daemon stopped): then it returns.
        Raises DockerUnavailable if the daemon cannot be reached at all."""
        await self.version()  # fail fast when nobody is there
        filters = json.dumps({"type": ["container"]})
        events = self._docker().events
        subscriber = events.subscribe(filters=filters, timeout=None)  # type: ignore[no-untyped-call]
        try:
            while (event := await subscriber.get()) is not None:
                yield event
        finally:
            await events.stop()  # type: ignore[no-untyped-call]


# --- blocking helpers (CLI, worker threads) ---------------------------------------------------


def _run(call: Any, url: str | None) -> Any:
    async def once() -> Any:
        api = DockerApi(url)
        try:
            return await call(api)
        finally:
            await api.close()

    return asyncio.run(once())


def inspect_container(name: str, url: str | None = None) -> dict[str, Any] | None:
    """Blocking `DockerApi.inspect` (DockerUnavailable if no daemon answers)."""
    result: dict[str, Any] | None = _run(lambda api: api.inspect(name), url)
    return result


def daemon_answers(url: str | None = None) -> bool:
    """True if a Docker daemon answers `GET /version` at `url`."""

    async def version(api: DockerApi) -> bool:
        try:
            await api.version()
        except DockerUnavailable:
            return False
        return True

    answered: bool = _run(version, url)
    return answered


def ensure_network(name: str, config: dict[str, Any], url: str | None = None) -> bool:
    """Create network `name` unless it exists; True if it was created."""

    async def ensure(api: DockerApi) -> bool:
        if await api.network(name) is not None:
            return False
        await api.create_network({"Name": name, **config})
        return True

    created: bool = _run(ensure, url)
    return created


def remove_network(name: str, url: str | None = None) -> bool:
    removed: bool = _run(lambda api: api.remove_network(name), url)
    return removed
