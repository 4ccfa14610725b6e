"""The missed-DEL collector: the decision rules (core), the collector over fake sources
and records, and the built-in runtime sources against fake `ctr` / `podman` commands."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavenet.core.cni_gc import CniRecord, GcPolicy, GcState
from weavenet.core.errors import ConfigError
from weavenet.io.cni_gc import CniCollector, ContainerdTasks, PodmanContainers, parse_runtime
from weavenet.io.store import Store


def rec(ident: str, added: float = 0.0) -> CniRecord:
    return CniRecord(ident, f"/proc/1/{ident}", "eth0", added)


def test_unknown_frees_nothing_and_resets_nothing() -> None:
    state = GcState(GcPolicy(min_age=0, misses_needed=1))
    assert state.round([rec("a")], None, 100.0) == []
    assert state.round([rec("a")], set(), 100.0) == ["a"]


def test_two_misses_in_a_row_are_needed() -> None:
    state = GcState(GcPolicy(min_age=0, misses_needed=2))
    assert state.round([rec("a")], set(), 10) == []
    assert state.round([rec("a")], {"a"}, 11) == []  # seen again: the count restarts
    assert state.round([rec("a")], set(), 12) == []
    assert state.round([rec("a")], set(), 13) == ["a"]


def test_young_records_are_kept() -> None:
    state = GcState(GcPolicy(min_age=60, misses_needed=1))
    assert state.round([rec("a", added=50)], set(), 100) == []
    assert state.round([rec("a", added=50)], set(), 111) == ["a"]


@given(st.lists(st.sampled_from("abcdef"), unique=True), st.sets(st.sampled_from("abcdef")))
def test_nothing_live_is_ever_freed(idents: list[str], live: set[str]) -> None:
    state = GcState(GcPolicy(min_age=0, misses_needed=1))
    doomed = state.round([rec(i) for i in idents], live, 1000)
    assert not set(doomed) & live and set(doomed) == set(idents) - live


class Source:
    def __init__(self, name: str, answer: set[str] | None) -> None:
        self.name, self.answer = name, answer

    async def live_ids(self) -> set[str] | None:
        return self.answer


def _collector(tmp_path: Path, now: list[float]) -> tuple[CniCollector, list[str], Store]:
    store = Store(tmp_path)
    released: list[str] = []
    gc = CniCollector(
        store, released.append, 1.0, GcPolicy(min_age=5, misses_needed=2), clock=lambda: now[0]
    )
    return gc, released, store


def test_collector_frees_only_what_no_source_lists(tmp_path: Path) -> None:
    now = [1000.0]
    gc, released, store = _collector(tmp_path, now)
    for ident in ("podman1", "ctr1", "gone1"):
        gc.register(ident, f"/run/netns/{ident}", "eth0")
    gc.add_source(Source("podman", {"podman1"}))
    gc.add_source(Source("containerd", {"ctr1"}))
    now[0] += 10
    assert asyncio.run(gc.collect_once()) == []  # first miss
    assert asyncio.run(gc.collect_once()) == ["gone1"]
    assert released == ["gone1"]
    assert {r.ident for r in store.load_cni()} == {"podman1", "ctr1"}
    assert gc.snapshot()["freed"] == 1


def test_one_unknown_source_stops_the_round(tmp_path: Path) -> None:
    now = [1000.0]
    gc, released, _ = _collector(tmp_path, now)
    gc.register("gone1", "/n", "eth0")
    gc.add_source(Source("podman", set()))
    gc.add_source(Source("api", None))
    now[0] += 10
    for _ in range(3):
        assert asyncio.run(gc.collect_once()) == []
    assert released == []


def test_without_a_source_nothing_is_freed(tmp_path: Path) -> None:
    now = [1000.0]
    gc, released, _ = _collector(tmp_path, now)
    gc.register("x", "/n", "eth0")
    now[0] += 100
    for _ in range(3):
        asyncio.run(gc.collect_once())
    assert released == []


def test_records_survive_a_restart_and_unregister_is_idempotent(tmp_path: Path) -> None:
    now = [1.0]
    gc, _, store = _collector(tmp_path, now)
    gc.register("a", "/proc/7/ns/net", "eth1")
    store.close()
    again = CniCollector(Store(tmp_path), lambda _: None, 1.0, GcPolicy())
    assert [(r.ident, r.netns, r.ifname) for r in again.records()] == [
        ("a", "/proc/7/ns/net", "eth1")
    ]
    assert again.unregister("a") and not again.unregister("a")


def _fake(tmp_path: Path, name: str, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_containerd_lists_running_tasks_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = "TASK PID STATUS\nrun1 10 RUNNING\nstop1 0 STOPPED\npaused1 11 PAUSED\n"
    _fake(tmp_path, "ctr", f"printf '{table}'\n", monkeypatch)
    ids = asyncio.run(ContainerdTasks("/s", "k8s.io").live_ids())
    assert ids == {"run1", "k8s.io-run1", "paused1", "k8s.io-paused1"}


def test_a_failing_runtime_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(tmp_path, "ctr", "echo 'connection refused' >&2; exit 1\n", monkeypatch)
    assert asyncio.run(ContainerdTasks().live_ids()) is None
    assert asyncio.run(PodmanContainers(str(tmp_path / "no-such-podman")).live_ids()) is None


def test_podman_lists_full_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(tmp_path, "podman", "echo aaaa; echo bbbb\n", monkeypatch)
    assert asyncio.run(PodmanContainers().live_ids()) == {"aaaa", "bbbb"}


def test_runtime_specs() -> None:
    assert isinstance(parse_runtime("podman"), PodmanContainers)
    source = parse_runtime("containerd:/run/x.sock:default")
    assert isinstance(source, ContainerdTasks) and (source.socket, source.namespace) == (
        "/run/x.sock",
        "default",
    )
    with pytest.raises(ConfigError, match="containerd"):
        parse_runtime("docker")
