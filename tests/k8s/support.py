"""The k8s tier's helpers (the deployment itself is weavenet.harness.k8s_weave)."""

from __future__ import annotations

import time
from typing import Any

from weavenet.harness.k8s_weave import (
    Deployment,
    container_pid,
    ping_from_pod,
    pod_manifest,
    wait_pod_running,
)
from weavenet.harness.util import wait_until

__all__ = [
    "Deployment",
    "container_pid",
    "ping_from_pod",
    "pod_manifest",
    "poll",
    "wait_pod_running",
]


def poll(condition: Any, timeout: float, message: str, describe: Any = None) -> None:
    started = time.monotonic()
    wait_until(condition, timeout, interval=0.5, message=message, describe=describe)
    print(f"{message.split(' not ')[0]}: {time.monotonic() - started:.1f} s")
