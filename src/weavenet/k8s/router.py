"""The agent's view of the local router, through its HTTP API (as `weave` uses it)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp


class RouterError(Exception):
    pass


class RouterClient:
    def __init__(self, http_addr: str = "127.0.0.1:6784", timeout: float = 10.0) -> None:
        self.base = f"http://{http_addr}"
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _call(
        self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
    ) -> str:
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as session,
                session.request(method, self.base + path, data=data, headers=headers) as resp,
            ):
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RouterError(
                f"router at {self.base} did not answer {method} {path}: {exc}"
            ) from None
        if resp.status >= 400:
            raise RouterError(f"{method} {path}: HTTP {resp.status}: {text.strip()}")
        return text

    async def up(self) -> bool:
        """True when the router answers /status."""
        try:
            await self._call("GET", "/status")
        except RouterError:
            return False
        return True

    async def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            await self._call("GET", "/report", headers={"Accept": "application/json"})
        )
        return data

    async def ring_owners(self) -> dict[str, bool]:
        """Peer name -> reachable, for every peer owning a range of the ring."""
        ipam = (await self.report()).get("IPAM") or {}
        owners: dict[str, bool] = {}
        for entry in ipam.get("Entries") or []:
            if int(entry.get("Size", 0)) > 0:
                peer = str(entry.get("Peer"))
                owners[peer] = owners.get(peer, False) or bool(entry.get("IsKnownPeer"))
        return owners

    async def connect(self, addresses: list[str]) -> None:
        if addresses:
            await self._call("POST", "/connect", data=[("peer", a) for a in addresses])

    async def forget(self, addresses: list[str]) -> None:
        if addresses:
            await self._call("POST", "/forget", data=[("peer", a) for a in addresses])

    async def rmpeer(self, peer: str) -> str:
        """Take over `peer`'s ranges (`weave rmpeer`): the router's answer, e.g.
        '65536 IPs taken over from PEER'."""
        return (await self._call("DELETE", f"/peer/{peer}")).strip()
