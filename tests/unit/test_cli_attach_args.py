"""`weave attach|detach|expose|hide` argument handling, and `weave launch`'s checks before
it spawns anything (help, peer addresses, the IP allocation range)."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import weavenet.dataplane as dp
from weavenet.cli import launch_args, launcher
from weavenet.cli.dataplane_cmds import split_container_args
from weavenet.cli.ipam_client import Claim, Subnet, is_address_arg, parse_address, parse_addresses
from weavenet.cli.main import main
from weavenet.dataplane import ContainerRef, DataplaneError

IF = ipaddress.IPv4Interface


def weave(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("10.2.1.1/24", Claim(IF("10.2.1.1/24"))),
        ("ip:10.2.1.1/24", Claim(IF("10.2.1.1/24"))),
        ("10.2.1.0/31", Claim(IF("10.2.1.0/31"))),
        ("192.168.0.7/32", Claim(IF("192.168.0.7/32"))),
        ("net:default", Subnet(None)),
        ("net:10.2.0.0/16", Subnet(IF("10.2.0.0/16"))),
    ],
)
def test_parse_address(arg: str, expected: object) -> None:
    assert parse_address(arg) == expected


@pytest.mark.parametrize(
    ("arg", "is_address"),
    [
        ("10.2.1.1/24", True),
        ("ip:anything", True),
        ("net:default", True),
        ("net:10.2.0.0/16", True),
        ("10.2.1.1", False),  # a bare IP could (just) be a Docker name
        ("netns:/run/netns/x", False),
        ("pid:42", False),
        ("web_1", False),
    ],
)
def test_address_or_container(arg: str, is_address: bool) -> None:
    assert is_address_arg(arg) is is_address


def test_split_container_args() -> None:
    addrs, spec = split_container_args(["ip:10.2.1.1/24", "net:default", "netns:c1"])
    assert (addrs, spec) == ([Claim(IF("10.2.1.1/24")), Subnet(None)], "netns:c1")
    assert split_container_args(["pid:7"]) == ([], "pid:7")
    assert parse_addresses(["10.2.1.1/24", "ip:10.2.1.1/24"]) == [Claim(IF("10.2.1.1/24"))]


@pytest.fixture
def resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every container lookup, so tests can check that a bad argument stops before it; the
    router is somewhere nothing listens."""
    calls: list[str] = []

    def resolve(spec: str, netns: str | None = None) -> ContainerRef:
        calls.append(spec)
        raise DataplaneError("network namespace /run/netns/x not found")

    monkeypatch.setattr(dp, "resolve_container", resolve)
    monkeypatch.setenv("WEAVE_HTTP_ADDR", str(tmp_path / "no-router.sock"))
    return calls


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["attach"], "attach: missing container"),
        (["attach", "10.2.1.1/24"], "missing container after 10.2.1.1/24"),
        (["attach", "10.2.1.1", "netns:c1"], "'10.2.1.1' needs a prefix length"),
        (["attach", "ip:10.2.1.1", "netns:c1"], "'ip:10.2.1.1' needs a prefix length"),
        (["attach", "10.2.1.1/33", "netns:c1"], "invalid address '10.2.1.1/33'"),
        (["attach", "net:nope/16", "netns:c1"], "invalid address 'net:nope/16'"),
        (["attach", "fd00::1/64", "netns:c1"], "only IPv4"),
        (["attach", "10.2.1.0/24", "netns:c1"], "network address of 10.2.1.0/24"),
        (["attach", "10.2.1.255/24", "netns:c1"], "broadcast address of 10.2.1.0/24"),
        (["attach", "c0", "netns:c1"], "unexpected argument 'c0'"),
        (["attach", "10.2.1.1/24", "10.2.1.1/16", "netns:c1"], "given twice"),
        (["attach", "--bogus", "netns:c1"], "attach: No such option '--bogus'"),
        (["attach", "--timeout", "0", "netns:c1"], "attach: Invalid value for '--timeout'"),
        (["detach"], "detach: missing container"),
        (["expose", "web"], "unexpected argument 'web'"),
        (["expose", "10.2.1.254"], "needs a prefix length, e.g. 10.2.1.254/24"),
        (["hide", "10.2.1.254/33"], "invalid address '10.2.1.254/33'"),
        (["ps", "--nope"], "ps: No such option '--nope'"),
    ],
)
def test_bad_arguments_print_one_line(resolved: list[str], args: list[str], fragment: str) -> None:
    line = one_line_error(weave(*args))
    assert line.startswith(f"weave: {args[0]}: ")
    assert fragment in line
    assert resolved == [], "a bad argument must be refused before anything is looked up"


def test_missing_container(resolved: list[str]) -> None:
    line = one_line_error(weave("attach", "10.2.1.1/24", "netns:x"))
    assert line == "weave: attach: network namespace /run/netns/x not found"


# --- weave launch, before anything is spawned ------------------------------------------------


@pytest.fixture
def no_spawn(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    spawned: list[list[str]] = []

    def spawn(config: launcher.LaunchConfig) -> None:
        spawned.append(config.args)
        raise launcher.LaunchError("spawn reached")

    monkeypatch.setattr(launcher, "spawn", spawn)
    monkeypatch.setattr(launcher, "read_pid", lambda state_dir: None)
    monkeypatch.setattr(launcher, "router_answers", lambda addr=None, timeout=1.0: None)
    monkeypatch.setattr(launch_args, "_overlap", lambda cidr: False)
    monkeypatch.setattr(
        launcher, "router_command", lambda: [sys.executable, "-m", "weavenet.daemon"]
    )
    return spawned


def test_launch_help_is_whole_and_exits_zero(no_spawn: list[list[str]]) -> None:
    result = weave("launch", "--help")
    assert result.exit_code == 0, result.stderr
    for text in (
        "weave launch",
        "--ipalloc-range",
        "--resume",
        "--conn-limit",
        "--trusted-subnets",
    ):
        assert text in result.stdout
    assert no_spawn == []


@pytest.mark.parametrize(
    ("peer", "message"),
    [
        ("999.1.1.1", "invalid host in peer address '999.1.1.1'"),
        ("host:99999", "invalid port in peer address 'host:99999'"),
        ("a b", "invalid host in peer address 'a b'"),
    ],
)
def test_launch_refuses_a_bad_peer_at_once(
    no_spawn: list[list[str]], peer: str, message: str
) -> None:
    line = one_line_error(weave("launch", "--nickname", "n1", "10.0.0.1", peer))
    assert line == f"weave launch: {message}"
    assert no_spawn == []


def test_launch_passes_the_default_range(no_spawn: list[list[str]]) -> None:
    weave("launch", "--no-discovery", "10.0.0.1")
    assert no_spawn == [["--ipalloc-range", "10.32.0.0/12", "--no-discovery", "10.0.0.1"]]


def test_launch_refuses_an_overlapping_default_range(
    no_spawn: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch_args, "_overlap", lambda cidr: True)
    result = weave("launch")
    assert result.exit_code == 1 and no_spawn == []
    assert result.stderr == (
        "ERROR: Default --ipalloc-range 10.32.0.0/12 overlaps with existing route on host.\n"
        "You must pick another range and set it on all hosts.\n"
    )


def test_launch_only_warns_for_a_chosen_range(
    no_spawn: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch_args, "_overlap", lambda cidr: True)
    result = weave("launch", "--ipalloc-range", "10.2.0.0/16")
    assert result.stderr.startswith("WARNING: Specified --ipalloc-range 10.2.0.0/16 overlaps")
    assert no_spawn == [["--ipalloc-range=10.2.0.0/16"]]
    weave("launch", "--ipalloc-range=")
    assert no_spawn[-1] == ["--ipalloc-range="], "an empty range disables IPAM"
