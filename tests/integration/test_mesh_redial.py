"""A peer that restarted is redialled: real router cores and MeshShells on loopback TCP.

B was given A's address (a direct target). A dies abruptly (its sockets reset, its port
closed); B's immediate redial is refused; B garbage-collects A; only then does a new A
(same name, new UID) listen on the same address. With no mesh socket left open in B,
only B's own timer can bring the next attempt: B must reconnect (the CI symptom was a B
that never dialled again)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from tests.integration.routers import free_port
from weavenet.core.mesh.config import RouterConfig
from weavenet.core.mesh.connection_maker import INITIAL_INTERVAL
from weavenet.core.mesh.router import Router
from weavenet.io.mesh_tcp import MeshShell

A_NAME, B_NAME = 0x0A0000000001, 0x0A0000000002
# the backoff after the refusal is below 1.5 x INITIAL_INTERVAL; the rest is slack for a
# loaded machine (the condition is polled, never slept for)
DEADLINE = 3 * INITIAL_INTERVAL + 10.0


async def start_shell(name: int, host: str, port: int, seed: int) -> MeshShell:
    loop = asyncio.get_running_loop()
    config = RouterConfig(name=name, nickname=f"rd{seed}", port=port)
    shell = MeshShell(Router(config, random.Random(seed), loop.time()), host, port, _no_store)
    await shell.start()
    return shell


def _no_store(_targets: list[str]) -> None:
    """The targets are not persisted in this test."""


async def poll(check: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def connected(shell: MeshShell, name: int) -> bool:
    conn = shell.router.by_peer.get(name)
    return conn is not None and conn.established


def refused(shell: MeshShell) -> bool:
    """A target shows a refused dial ("failed", then the error and the retry time)."""
    rows = shell.report(routes=False)["Router"]["Connections"] or []
    return any(r["State"] == "failed" and "connection refused" in str(r["Info"]) for r in rows)


def test_a_restarted_direct_peer_is_redialled_after_it_was_garbage_collected() -> None:
    async def main() -> None:
        host = f"127.0.0.{random.randint(2, 250)}"
        port = free_port(host)
        a = await start_shell(A_NAME, host, port, 1)
        b = await start_shell(B_NAME, host, free_port(host), 2)
        started = [a, b]
        try:
            assert b.connect([f"{host}:{port}"], replace=False) == []
            await poll(lambda: connected(b, A_NAME), "B to connect to A")
            await a.stop()  # A dies: its connections reset, its port closed
            await poll(lambda: A_NAME not in b.router.known_peers(), "B to forget A")
            await poll(lambda: refused(b), "B's redial of A to be refused")
            assert not b.transports  # nothing but B's timer can bring the next attempt
            a = await start_shell(A_NAME, host, port, 3)  # restarted: a new UID
            started.append(a)
            await poll(lambda: connected(b, A_NAME), "B to redial the restarted A")
            assert connected(a, B_NAME)
        finally:
            for shell in started:
                await shell.stop()

    asyncio.run(main())
