"""The proxy's edges: listen addresses (Weave's -H forms and defaults), --proxy=false, the
wait program's files, `weave launch` turning the proxy on, `weave env`'s PROXY_HOST."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from weavenet.cli import launch_args, launcher, proxy_cmds
from weavenet.options import expand_bool_flags
from weavenet.proxy import weavewait
from weavenet.proxy.service import default_listen_address, normalise


@pytest.mark.parametrize(
    ("given", "want"),
    [
        ("unix:///var/run/weave/weave.sock", "unix:///var/run/weave/weave.sock"),
        ("/tmp/x.sock", "unix:///tmp/x.sock"),
        ("=unix:///tmp/x.sock", "unix:///tmp/x.sock"),
        ("tcp://0.0.0.0:12375", "tcp://0.0.0.0:12375"),
        ("127.0.0.1:2375", "tcp://127.0.0.1:2375"),
        (":12375", "tcp://0.0.0.0:12375"),
    ],
)
def test_listen_addresses(given: str, want: str) -> None:
    assert normalise(given) == want


@pytest.mark.parametrize("bad", ["unix://relative.sock", "tcp://host", "http://x:1"])
def test_bad_listen_addresses(bad: str) -> None:
    with pytest.raises(ValueError, match="-H"):
        normalise(bad)


def test_default_listen_address_follows_the_daemon() -> None:
    assert default_listen_address("") == "unix:///var/run/weave/weave.sock"
    assert default_listen_address("unix:///run/d.sock") == "unix:///var/run/weave/weave.sock"
    assert default_listen_address("tcp://10.0.0.1:2375") == "tcp://0.0.0.0:12375"


def test_bool_flags_as_weave_spells_them() -> None:
    args = ["--proxy=false", "--proxy=true", "--proxy", "--proxy=maybe", "--plugin=false"]
    assert expand_bool_flags(args) == [
        "--no-proxy",
        "--proxy",
        "--proxy",
        "--proxy=maybe",
        "--plugin=false",
    ]


def test_launch_turns_the_proxy_on_unless_told_not_to() -> None:
    assert launcher._with_bridge(["p1"])[:3] == ["--weave-bridge", "weave", "--proxy"]
    assert "--proxy" not in launcher._with_bridge(["--proxy=false", "p1"])
    assert launch_args.peer_args(["--proxy=false", "-H", "unix:///x.sock", "1.2.3.4"]) == [
        "1.2.3.4"
    ]
    env = {"DOCKER_HOST": launcher.PROXY_SOCKET, "ORIG_DOCKER_HOST": "unix:///d.sock"}
    assert launcher.daemon_env(env) == {"DOCKER_HOST": "unix:///d.sock"}
    assert launcher.daemon_env({**env, "ORIG_DOCKER_HOST": ""}) == {}


def test_proxy_host_as_weaves_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROXY_HOST", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.1.2.3:2375")
    assert proxy_cmds.proxy_host() == "10.1.2.3"
    monkeypatch.delenv("DOCKER_HOST")
    assert proxy_cmds.proxy_host() == "127.0.0.1"
    monkeypatch.setenv("PROXY_HOST", "example")
    assert proxy_cmds.proxy_host() == "example"


def test_weave_env_without_a_router_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAVE_HTTP_ADDR", "/nonexistent/dx-router.sock")
    assert proxy_cmds.proxy_addr() is None


needs_busybox = pytest.mark.skipif(
    not os.access("/bin/busybox", os.X_OK) or not weavewait.is_static_elf("/bin/busybox"),
    reason="needs Debian's busybox-static",
)


@needs_busybox
def test_wait_program_files(tmp_path: Path) -> None:
    assert not weavewait.is_static_elf(shutil.which("ls") or "/bin/ls")
    assert not weavewait.is_static_elf(str(tmp_path / "missing"))
    out = weavewait.install(tmp_path / "w", "/bin/busybox")
    assert (out / "busybox").read_bytes() == Path("/bin/busybox").read_bytes()
    assert os.access(out / "w", os.X_OK)
    assert (out / "w").read_text().startswith("#!/w/busybox sh\n")
    mtime = (out / "w").stat().st_mtime_ns
    weavewait.install(tmp_path / "w", "/bin/busybox")  # unchanged: not rewritten
    assert (out / "w").stat().st_mtime_ns == mtime


def test_wait_program_busybox_is_linked_where_it_can_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "busybox-static"
    source.write_bytes(b"\x7fELF fake static busybox")
    source.chmod(0o755)
    out = weavewait.install(tmp_path / "linked", str(source))
    assert os.path.samefile(out / "busybox", source)  # one filesystem: a hard link
    weavewait.install(tmp_path / "linked", str(source))  # again: still the link
    assert os.path.samefile(out / "busybox", source)

    def cross_device(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    copied = weavewait.install(tmp_path / "copied", str(source))
    assert not os.path.samefile(copied / "busybox", source)
    assert (copied / "busybox").read_bytes() == source.read_bytes()
    assert os.access(copied / "busybox", os.X_OK)
    assert not list(copied.glob(".*.tmp"))


@needs_busybox
def test_wait_program_refuses_no_command(tmp_path: Path) -> None:
    script = weavewait.SCRIPT.replace("/w/busybox", "/bin/busybox")
    proc = subprocess.run(["/bin/busybox", "sh", "-c", script, "w"], capture_output=True,
                          text=True, timeout=30, check=False)  # fmt: skip
    assert proc.returncode == 1 and "No command specified" in proc.stderr


def test_weave_reset_removes_the_wait_program(tmp_path: Path) -> None:
    from weavenet.cli.admin_cmds import remove_state

    state = tmp_path / "state"
    (state / weavewait.WAIT_DIR).mkdir(parents=True)
    for name in ("busybox", "w"):
        (state / weavewait.WAIT_DIR / name).write_text("x")
    (state / "weaver.log").write_text("log")
    remove_state(state)
    assert not state.exists()
