"""What `dataplane.observe` reports for each kind of container, with Docker and netlink
replaced: the gone-for-good facts the planner relies on."""

from __future__ import annotations

import errno
import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest

import weavenet.dataplane.observe as obs
from weavenet.core.attachments import Attachment, ContainerState
from weavenet.dataplane import DataplaneError

DOCKER_ID = "ab" * 32


def att(ident: str, path: str) -> Attachment:
    return Attachment(ident, ident, path, "0:0", (ipaddress.IPv4Interface("10.2.1.1/24"),))


@pytest.fixture(autouse=True)
def no_netlink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(obs, "link_state", lambda ref, bridge, netns: None)


def inspect_answers(monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any] | int) -> None:
    def inspect(name: str, docker_host: str | None = None) -> dict[str, Any]:
        assert name == DOCKER_ID
        if isinstance(answer, int):
            raise DataplaneError("docker says no", answer)
        return answer

    monkeypatch.setattr(obs, "docker_inspect", inspect)


def test_docker_container_removed_stopped_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    a = att(DOCKER_ID, "/proc/1/ns/net")
    inspect_answers(monkeypatch, errno.ENOENT)
    assert obs.observe(a).container is ContainerState.REMOVED
    inspect_answers(monkeypatch, errno.ECONNREFUSED)
    assert obs.observe(a).container is ContainerState.UNKNOWN
    inspect_answers(monkeypatch, {"State": {"Running": False, "Pid": 0}})
    assert obs.observe(a).container is ContainerState.STOPPED


def test_running_docker_container_is_found_in_its_current_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = os.getpid()
    inspect_answers(monkeypatch, {"State": {"Running": True, "Pid": pid}})
    seen = obs.observe(att(DOCKER_ID, "/proc/1/ns/net"))
    assert seen.container is ContainerState.RUNNING
    assert seen.netns_path == f"/proc/{pid}/ns/net"
    assert seen.netns_id == obs.netns_identity(f"/proc/{pid}/ns/net") is not None
    assert seen.link is None


def test_netns_file_present_or_gone(tmp_path: Path) -> None:
    path = tmp_path / "c1"
    path.write_text("")
    seen = obs.observe(att("netns:c1", str(path)))
    assert seen.container is ContainerState.RUNNING and seen.netns_id == obs.netns_identity(
        str(path)
    )
    path.unlink()
    assert obs.observe(att("netns:c1", str(path))).container is ContainerState.REMOVED
    assert obs.observe(att("pid:999999", "/proc/999999/ns/net")).container is ContainerState.REMOVED
