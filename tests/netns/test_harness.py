"""Self-check of the namespace harness (no router needed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from weavenet.harness import Cluster, CommandError, venv_bin, wait_until
from weavenet.harness.util import pid_alive


def our_netns(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    names = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    return [n for n in names if n == prefix or n.startswith(prefix + "-")]


def assert_gone(cluster: Cluster) -> None:
    assert our_netns(cluster.prefix) == []
    assert not cluster.tmpdir.exists()


def test_hosts_reach_each_other_over_underlay(cluster: Callable[..., Cluster]) -> None:
    c = cluster(3)
    assert [h.netns for h in c.hosts] == [f"{c.prefix}-h{i}" for i in (1, 2, 3)]
    assert sorted(our_netns(c.prefix)) == sorted([c.lan.netns, *(h.netns for h in c.hosts)])
    for src in c.hosts:
        for dst in c.hosts:
            assert src.ping(dst.ip), f"{src.name} cannot ping {dst.name} ({dst.ip})"
        assert src.ping("127.0.0.1"), f"loopback down on {src.name}"


def test_host_env_and_state_dir(cluster: Callable[..., Cluster]) -> None:
    c = cluster(1)
    h1 = c.hosts[0]
    assert h1.state_dir == Path("/tmp") / c.prefix / "h1"
    assert h1.state_dir.is_dir()
    assert h1.env["WEAVE_STATE_DIR"] == str(h1.state_dir)
    assert h1.env["PATH"].split(":")[0] == str(venv_bin())
    out = h1.run(["sh", "-c", 'echo "$WEAVE_STATE_DIR"; ip -o -4 addr show dev eth0'])
    lines = out.stdout.splitlines()
    assert lines[0] == str(h1.state_dir)
    assert f"inet {h1.cidr}" in lines[1]


def test_run_reports_failure_with_output(cluster: Callable[..., Cluster]) -> None:
    h1 = cluster(1).hosts[0]
    with pytest.raises(CommandError, match="boom-on-stderr"):
        h1.run(["sh", "-c", "echo boom-on-stderr >&2; exit 3"])
    assert h1.run(["sh", "-c", "exit 3"], check=False).returncode == 3
    assert h1.run(["cat"], input="piped").stdout == "piped"


@pytest.mark.skipif(shutil.which("iptables") is None, reason="iptables not installed")
def test_iptables_in_host_and_lan(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2)
    h1, h2 = c.hosts
    # drop everything bridged on the LAN: hosts can no longer reach each other
    c.iptables("-A", "FORWARD", "-j", "DROP")
    assert not h1.ping(h2.ip, timeout=0.5)
    c.iptables("-D", "FORWARD", "-j", "DROP")
    assert h1.ping(h2.ip)
    h2.iptables("-A", "INPUT", "-p", "icmp", "-j", "DROP")
    assert not h1.ping(h2.ip, timeout=0.5)
    assert "DROP" in h2.iptables("-S", "INPUT").stdout


def test_containers_are_tracked_and_deleted(cluster: Callable[..., Cluster]) -> None:
    c = cluster(1)
    h1 = c.hosts[0]
    web = h1.add_container("web")
    assert web.netns == f"{c.prefix}-h1-web"
    assert web.netns in our_netns(c.prefix)
    assert web.ping("127.0.0.1")
    h1.remove_container("web")
    assert web.netns not in our_netns(c.prefix)
    h1.add_container("db")
    c.close()
    assert_gone(c)


def test_teardown_removes_everything_and_kills_processes() -> None:
    with Cluster(2) as c:
        h1 = c.hosts[0]
        h1.add_container("c1")
        bg = h1.popen(["sleep", "300"])
        # a "daemon" that outlives its parent, recorded in the router's pid file
        h1.run(["sh", "-c", f"sleep 300 >/dev/null 2>&1 & echo $! > {h1.state_dir}/weaver.pid"])
        daemon = int((h1.state_dir / "weaver.pid").read_text())
        assert h1.router_pid() == daemon
        stray = c.hosts[1].popen(["sleep", "300"])
    assert_gone(c)
    assert bg.poll() is not None and stray.poll() is not None
    assert not pid_alive(daemon)


def test_teardown_after_exception_inside_block() -> None:
    with pytest.raises(RuntimeError, match="inside"):  # noqa: SIM117 - the order matters
        with Cluster(2) as c:
            c.hosts[0].add_container("x")
            raise RuntimeError("inside the block")
    assert_gone(c)


def test_teardown_after_failed_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    real_add_host = Cluster._add_host

    def flaky_add_host(self: Cluster, index: int, ip: str) -> object:
        if index == 2:
            raise OSError("injected failure half-way")
        return real_add_host(self, index, ip)

    monkeypatch.setattr(Cluster, "_add_host", flaky_add_host)
    c = Cluster(3)
    with pytest.raises(OSError, match="half-way"):
        c.start()
    assert c.closed
    assert_gone(c)


def test_explicit_prefix_and_underlay(cluster: Callable[..., Cluster]) -> None:
    c = cluster(2, underlay="10.99.7.0/29")
    assert [h.ip for h in c.hosts] == ["10.99.7.1", "10.99.7.2"]
    with pytest.raises(ValueError):
        Cluster(7, underlay="10.99.7.0/29")


def test_wait_until() -> None:
    calls: list[int] = []

    def becomes_true() -> int:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    assert wait_until(becomes_true, timeout=5, interval=0.01) == 3
    with pytest.raises(TimeoutError, match=r"never ready.*last observed: 42"):
        wait_until(lambda: 0, 0.05, interval=0.01, message="never ready", describe=lambda: 42)
    with pytest.raises(TimeoutError, match=r"last observed: \[\]"):
        wait_until(list, 0.05, interval=0.01)


def test_wait_until_reports_last_exception() -> None:
    def failing() -> bool:
        raise ConnectionRefusedError("router not up")

    with pytest.raises(TimeoutError, match="router not up") as info:
        wait_until(failing, 0.05, interval=0.01, message="no router")
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_venv_bin_has_python() -> None:
    assert (venv_bin() / "python").exists()
    assert Path(sys.executable).parent == venv_bin() or (venv_bin() / "weave").exists()
