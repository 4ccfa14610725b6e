"""WEAVE_CNI_TRACE: one JSON line per plugin run with its phases, and nothing without it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from weavenet.cni.config import Env, NetConf
from weavenet.cni.main import run
from weavenet.cni.trace import TRACE_ENV, current

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/n", "CNI_IFNAME": "eth0"}
CONF = b'{"cniVersion": "1.0.0", "name": "weave", "type": "weave-net"}'


def plugin(env: Env, conf: NetConf) -> dict[str, Any] | None:
    with current().phase("POST /ip/...") as extra:
        extra["code"] = 200
    current().annotate(router={"work_ms": 1.0})
    return {"cniVersion": conf.cni_version, "ips": []}


def test_a_traced_run_appends_its_phases(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    for _ in range(2):
        status = run(
            plugin, {**ENV, TRACE_ENV: str(path)}, io.BytesIO(CONF), io.StringIO(), io.StringIO()
        )
        assert status == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2
    record = lines[0]
    assert (record["command"], record["container"], record["status"]) == ("ADD", "abc", 0)
    assert [p["phase"] for p in record["phases"]] == ["parse", "POST /ip/..."]
    assert record["phases"][1]["code"] == 200
    assert record["phases"][1]["router"] == {"work_ms": 1.0}
    assert record["total_ms"] >= record["phases"][1]["ms"]
    assert record["startup_ms"] is None or record["startup_ms"] >= 0


def test_a_failed_run_is_traced_with_its_status(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    env = {**ENV, TRACE_ENV: str(path)}
    assert run(plugin, env, io.BytesIO(b"{not json"), io.StringIO(), io.StringIO()) == 1
    assert json.loads(path.read_text())["status"] == 1


def test_no_trace_without_the_variable(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(plugin, ENV, io.BytesIO(CONF), io.StringIO(), io.StringIO()) == 0
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_trace_does_not_fail_the_plugin(tmp_path: Path) -> None:
    env = {**ENV, TRACE_ENV: str(tmp_path / "no" / "such" / "dir")}
    assert run(plugin, env, io.BytesIO(CONF), io.StringIO(), io.StringIO()) == 0
