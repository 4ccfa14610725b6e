"""An overlay whose connections take a while to establish, as fastdp's do (its first
heartbeats must cross the kernel path both ways): for simulations of a forming mesh."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from weavenet.core.mesh.overlay import OverlayConnection, OverlayParams


@dataclass
class SlowConnection:
    delay: float
    established: bool = False
    error: str | None = None
    ready_at: float = float("inf")

    def confirm(self, now: float) -> None:
        self.ready_at = min(self.ready_at, now + self.delay)

    def control_message(self, tag: int, payload: bytes, now: float) -> None:
        return None

    def take_control_messages(self) -> list[tuple[int, bytes]]:
        return []

    def tick(self, now: float) -> float:
        if now >= self.ready_at:
            self.established = True
            return float("inf")
        return self.ready_at

    def attrs(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        return None


class SlowOverlay:
    """Each connection establishes ``low``..``high`` seconds after the mesh confirms it."""

    def __init__(self, rng: random.Random, low: float, high: float) -> None:
        self.rng, self.low, self.high = rng, low, high

    def add_features(self, features: dict[str, str]) -> None:
        return None

    def prepare_connection(self, params: OverlayParams) -> OverlayConnection:
        return SlowConnection(self.rng.uniform(self.low, self.high))

    def diagnostics(self) -> dict[str, Any]:
        return {}
