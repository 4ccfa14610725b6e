"""A Go weaver 2.8.1 (../shared/anchor/weaver, or GO_WEAVER) next to our router with
fastdp on: it advertises ``fastdp sleeve``, we advertise ``weavenet-fastdp sleeve``, so
the connection runs the Weave-compatible sleeve, plain and encrypted, both ways
(issue 8, acceptance 4). Skipped when the binary is absent."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from weavenet.harness import Cluster, Host, wait_until
from weavenet.harness.containers import attached_container, connections, wait_reaches

GO_WEAVER = Path(os.environ.get("GO_WEAVER", "/work/shared/anchor/weaver"))
pytestmark = pytest.mark.skipif(
    not GO_WEAVER.is_file() or shutil.which("unshare") is None,
    reason="no Go weaver (../shared/anchor/weaver or GO_WEAVER)",
)


def _start_go_weaver(host: Host, peer: str, password: str | None) -> None:
    state = host.state_dir / "go"
    state.mkdir()
    argv = [
        "unshare", "--pid", "--fork", "--mount-proc", "env", "CHECKPOINT_DISABLE=1",
        str(GO_WEAVER), "--port=6783", "--name=a2:00:00:00:00:01", "--nickname=go",
        "--docker-api=", "--datapath=datapath", "--weave-bridge=weave",
        "--http-addr=127.0.0.1:6784", "--status-addr=127.0.0.1:6782",
        f"--db-prefix={state}/weave", "--ipalloc-range=", "--no-dns",
        *(["--password", password] if password else []), peer,
    ]  # fmt: skip
    with (state / "weaver.log").open("wb") as log:
        host.popen(argv, cwd=state, stdout=log, stderr=log)


@pytest.mark.parametrize("password", [None, "s3cret"], ids=["plain", "encrypted"])
def test_a_go_weaver_gets_the_sleeve_from_our_fastdp_router(
    cluster: Callable[..., Cluster], password: str | None
) -> None:
    c = cluster(2)
    ours, go = c.hosts
    ours.launch(*(["--password", password] if password else []))
    _start_go_weaver(go, ours.ip, password)
    wait_until(
        lambda: "established" in connections(ours) and "sleeve" in connections(ours),
        timeout=40,
        message="sleeve established with the Go weaver",
        describe=lambda: connections(ours),
    )
    wait_until(lambda: go.run(["ip", "link", "show", "weave"], check=False).returncode == 0,
               timeout=20, message="the Go weaver's bridge")  # fmt: skip
    a = attached_container(ours, "a", "10.2.1.1/24")
    b = attached_container(go, "b", "10.2.1.2/24")
    wait_reaches(a, "10.2.1.2", timeout=30)
    wait_reaches(b, "10.2.1.1", timeout=15)
    status = connections(ours)
    assert "fastdp" not in status and ("encrypted" in status) == bool(password), status
