"""The Docker Engine API, through aiodocker: the one Docker client of weavenet (the
router's plugin, event watcher and proxy, the CLI, the attachment observer).

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
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    import aiodocker

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


def socket_missing(url: str | None = None) -> bool:
    """A unix socket that is not there: no daemon can answer (no client needed to know)."""
    where = docker_host(url)
    return where.startswith("unix://") and not os.path.exists(where.removeprefix("unix://"))


def preload_client() -> None:
    """Import the client now (the router does, before its event loop, when a daemon's
    socket is there): aiodocker imports aiohttp's client side, its connector and the two
    TLS contexts that builds, ~0.1 CPU-s that a router without Docker never pays; if
    Docker appears later, the first request imports them."""
    import aiodocker  # noqa: F401


class DockerApi:
    """A connection to one Docker daemon (create and use it on one event loop)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = docker_host(url)
        self._client: aiodocker.Docker | None = None

    def _docker(self) -> aiodocker.Docker:
        if self._client is None:
            if socket_missing(self.url):
                raise DockerUnavailable(self.url, "no such socket (is Docker running?)")
            import aiodocker  # see preload_client
            import aiohttp

            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            self._client = aiodocker.Docker(url=self.url, api_version=API_VERSION, timeout=timeout)
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _request(
        self, call: Callable[[aiodocker.Docker], Awaitable[T]], missing_ok: bool = True
    ) -> T | None:
        """Run `call` on the client; a 404 gives None when `missing_ok`, any other failure
        (an error status, no daemon, a timeout) DockerUnavailable."""
        docker = self._docker()  # DockerUnavailable at once when there is no socket
        import aiohttp
        from aiodocker.exceptions import DockerError

        try:
            return await call(docker)
        except DockerError as exc:
            if exc.status == 404 and missing_ok:
                return None
            raise DockerUnavailable(self.url, exc.message, exc.status) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DockerUnavailable(self.url, str(exc) or type(exc).__name__) from exc

    async def inspect(self, name: str) -> dict[str, Any] | None:
        """GET /containers/NAME/json; None if there is no such container."""
        return await self._request(lambda d: d.containers.container(name).show())

    async def inspect_image(self, name: str) -> dict[str, Any] | None:
        """GET /images/NAME/json; None if there is no such image."""
        return await self._request(lambda d: d.images.inspect(name))

    async def kill(self, name: str) -> None:
        """POST /containers/NAME/kill (a container that is gone is not an error)."""
        await self._request(lambda d: d.containers.container(name).kill())

    async def version(self) -> dict[str, Any]:
        """GET /version (DockerUnavailable when no daemon answers)."""
        return await self._required(lambda d: d.version())

    async def running_ids(self) -> list[str]:
        """Full ids of the running containers."""
        found = await self._required(lambda d: d.containers.list())
        return [c.id for c in found]

    async def network(self, name: str) -> dict[str, Any] | None:
        """GET /networks/NAME; None if there is no such network."""
        if not name:
            return None  # GET /networks/ would list them all

        async def show(docker: aiodocker.Docker) -> dict[str, Any]:
            info: dict[str, Any] = await (await docker.networks.get(name)).show()
            return info

        return await self._request(show)

    async def networks(self, driver: str) -> list[dict[str, Any]]:
        """GET /networks with that driver."""
        return await self._required(lambda d: d.networks.list(filters={"driver": [driver]}))

    async def create_network(self, config: dict[str, Any]) -> None:
        await self._required(lambda d: d.networks.create(config))

    async def remove_network(self, name: str) -> bool:
        """Remove a network; False if there was none."""

        async def delete(docker: aiodocker.Docker) -> bool:
            await (await docker.networks.get(name)).delete()
            return True

        return await self._request(delete) is not None

    async def _required(self, call: Callable[[aiodocker.Docker], Awaitable[T]]) -> T:
        """`_request` where a 404 is an error too."""
        return cast(T, await self._request(call, missing_ok=False))

    async def container_events(
        self, since: float | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Container events (from wall-clock time `since` on, replayed by the daemon)
        until the stream ends (the daemon stopped): then it returns. Raises
        DockerUnavailable if the daemon cannot be reached at all."""
        await self.version()  # fail fast when nobody is there
        import aiohttp

        params: dict[str, str] = {"filters": json.dumps({"type": ["container"]})}
        if since is not None:
            params["since"] = f"{since:.6f}"
        events = self._docker().events
        subscriber = events.subscribe(timeout=None, **params)  # type: ignore[no-untyped-call]
        try:
            while (event := await subscriber.get()) is not None:
                yield event
        except (aiohttp.ClientError, OSError):
            return  # cut off mid-stream: the daemon went away
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
