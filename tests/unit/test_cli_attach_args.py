"""`weave attach|detach|ps|expose|hide` arguments and state files, against a fake dataplane.

The kernel functions in `weavenet.dataplane` are replaced by `FakeDataplane`, so nothing here
touches a network namespace; the netns tests cover the real thing.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import weavenet.dataplane as dp
from weavenet.cli.dataplane_cmds import (
    is_address_arg,
    parse_address,
    parse_addresses,
    split_container_args,
)
from weavenet.cli.main import main
from weavenet.dataplane import ContainerAddresses, ContainerRef, DataplaneError, FirewallState

IF = ipaddress.IPv4Interface
BRIDGE_MAC = "02:00:00:00:00:01"


class FakeDataplane:
    """Containers are files under `root` ("netns:NAME" -> root/NAME); state is in memory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bridge = True
        self.bridge_cidrs: list[IF] = []
        self.ethwe: dict[str, tuple[str, list[IF]]] = {}  # ident -> (mac, cidrs)
        self.calls: list[tuple[Any, ...]] = []

    def add_container(self, name: str) -> str:
        (self.root / name).write_text("")
        return f"netns:{name}"

    def resolve_container(self, spec: str, netns: str | None = None) -> ContainerRef:
        self.calls.append(("resolve", spec))
        path = self.root / spec.removeprefix("netns:")
        if not spec.startswith("netns:") or not path.exists():
            raise DataplaneError(f"network namespace {path} not found")
        return ContainerRef(spec, str(path))

    def bridge_exists(self, name: str = "weave", netns: str | None = None) -> bool:
        return self.bridge

    def attach(self, ref: ContainerRef, cidrs: list[IF], **kwargs: Any) -> None:
        self.calls.append(("attach", ref.ident, list(cidrs), kwargs))
        mac, have = self.ethwe.get(ref.ident, (f"02:00:00:00:01:{len(self.ethwe):02x}", []))
        self.ethwe[ref.ident] = (mac, have + [c for c in cidrs if c not in have])

    def detach(self, ref: ContainerRef, cidrs: list[IF] | None = None) -> list[IF]:
        self.calls.append(("detach", ref.ident, cidrs))
        mac, have = self.ethwe.get(ref.ident, ("", []))
        removed = [c for c in have if cidrs is None or c.ip in {x.ip for x in cidrs}]
        kept = [c for c in have if c not in removed]
        if kept:
            self.ethwe[ref.ident] = (mac, kept)
        else:
            self.ethwe.pop(ref.ident, None)
        return removed

    def container_addresses(self, ref: ContainerRef) -> ContainerAddresses:
        mac, cidrs = self.ethwe.get(ref.ident, (None, []))
        return ContainerAddresses(mac, list(cidrs))

    def bridge_addresses(self, name: str = "weave") -> tuple[str | None, list[IF]]:
        return (BRIDGE_MAC, list(self.bridge_cidrs)) if self.bridge else (None, [])

    def expose(self, cidr: IF, bridge: str, masquerade: bool, *, state: Any) -> FirewallState:
        self.calls.append(("expose", cidr, masquerade))
        self.bridge_cidrs = [*(c for c in self.bridge_cidrs if c != cidr), cidr]
        new: FirewallState = state.with_exposed(cidr, masquerade)
        return new

    def hide(self, cidr: IF, *, state: FirewallState) -> FirewallState:
        self.calls.append(("hide", cidr))
        self.bridge_cidrs = [c for c in self.bridge_cidrs if c != cidr]
        return state.without(cidr)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("WEAVE_STATE_DIR", str(path))
    return path


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> FakeDataplane:
    fake = FakeDataplane(tmp_path)
    for name in ("resolve_container", "bridge_exists", "attach", "detach", "container_addresses",
                 "bridge_addresses", "expose", "hide"):  # fmt: skip
        monkeypatch.setattr(dp, name, getattr(fake, name))
    return fake


def weave(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def ok(*args: str) -> str:
    result = weave(*args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def attachments(state_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state_dir / "attachments.json").read_text())
    return data


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("10.2.1.1/24", "10.2.1.1/24"),
        ("ip:10.2.1.1/24", "10.2.1.1/24"),
        ("10.2.1.0/31", "10.2.1.0/31"),
        ("192.168.0.7/32", "192.168.0.7/32"),
        ("ip:10.0.0.255/16", "10.0.0.255/16"),
    ],
)
def test_parse_address(arg: str, expected: str) -> None:
    assert parse_address(arg) == IF(expected)


@pytest.mark.parametrize(
    ("arg", "is_address"),
    [
        ("10.2.1.1/24", True),
        ("ip:anything", True),
        ("net:default", True),
        ("net:10.2.0.0/16", True),
        ("10.2.1.1", False),  # a bare IP could (just) be a Docker name
        ("netns:/run/netns/x", False),
        ("netns:x", False),
        ("pid:42", False),
        ("web_1", False),
    ],
)
def test_address_or_container(arg: str, is_address: bool) -> None:
    assert is_address_arg(arg) is is_address


def test_split_container_args() -> None:
    cidrs, spec = split_container_args(["ip:10.2.1.1/24", "10.2.2.1/24", "netns:c1"])
    assert (cidrs, spec) == ([IF("10.2.1.1/24"), IF("10.2.2.1/24")], "netns:c1")
    assert split_container_args(["pid:7"]) == ([], "pid:7")
    assert parse_addresses(["10.2.1.1/24", "ip:10.2.1.1/24"]) == [IF("10.2.1.1/24")]


# --- bad arguments: one line, non-zero, nothing touched --------------------------------------

NO_IPAM = "IP allocation must be enabled to"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["attach"], "attach: missing container"),
        (["attach", "net:default", "netns:c1"], f"{NO_IPAM} use 'net:'"),
        (["attach", "net:10.2.0.0/16", "netns:c1"], f"{NO_IPAM} use 'net:'"),
        (["attach", "netns:c1"], f"{NO_IPAM} attach without an address"),
        (["attach", "10.2.1.1/24"], "missing container after 10.2.1.1/24"),
        (["attach", "10.2.1.1", "netns:c1"], "'10.2.1.1' needs a prefix length"),
        (["attach", "ip:10.2.1.1", "netns:c1"], "'ip:10.2.1.1' needs a prefix length"),
        (["attach", "10.2.1.1/33", "netns:c1"], "invalid address '10.2.1.1/33'"),
        (["attach", "ip:nope/24", "netns:c1"], "invalid address 'ip:nope/24'"),
        (["attach", "fd00::1/64", "netns:c1"], "only IPv4"),
        (["attach", "10.2.1.0/24", "netns:c1"], "network address of 10.2.1.0/24"),
        (["attach", "10.2.1.255/24", "netns:c1"], "broadcast address of 10.2.1.0/24"),
        (["attach", "c0", "netns:c1"], "unexpected argument 'c0'"),
        (["attach", "10.2.1.1/24", "10.2.1.1/16", "netns:c1"], "given twice"),
        (["attach", "--bogus", "netns:c1"], "attach: No such option '--bogus'"),
        (["detach"], "detach: missing container"),
        (["detach", "net:default", "netns:c1"], f"{NO_IPAM} use 'net:'"),
        (["expose"], f"{NO_IPAM} expose without an address"),
        (["expose", "net:default"], f"{NO_IPAM} use 'net:'"),
        (["expose", "web"], "unexpected argument 'web'"),
        (["expose", "10.2.1.254"], "needs a prefix length, e.g. 10.2.1.254/24"),
        (["hide"], f"{NO_IPAM} hide without an address"),
        (["ps", "--nope"], "ps: No such option '--nope'"),
    ],
)
def test_bad_arguments_print_one_line(
    fake: FakeDataplane, state_dir: Path, args: list[str], fragment: str
) -> None:
    fake.add_container("c1")
    line = one_line_error(weave(*args))
    assert line.startswith(f"weave: {args[0]}: ")
    assert fragment in line
    assert fake.calls == [], "a bad argument must be refused before any kernel work"
    assert not state_dir.exists()


def test_host_netns_refusal_is_one_line(fake: FakeDataplane, monkeypatch: Any) -> None:
    def refuse(spec: str, netns: str | None = None) -> ContainerRef:
        raise DataplaneError(dp.HOST_NETNS_MESSAGE)

    monkeypatch.setattr(dp, "resolve_container", refuse)
    line = one_line_error(weave("attach", "10.2.1.1/24", "netns:host"))
    assert line.startswith("weave: attach: Container is running in the host network namespace")


def test_attach_without_bridge(fake: FakeDataplane, state_dir: Path) -> None:
    fake.bridge = False
    spec = fake.add_container("c1")
    for args in (["attach", "10.2.1.1/24", spec], ["expose", "10.2.1.254/24"]):
        line = one_line_error(weave(*args))
        assert line == f"weave: {args[0]}: weave bridge not found: run 'weave launch' first"
    assert fake.ethwe == {} and not state_dir.exists()


def test_missing_container(fake: FakeDataplane) -> None:
    line = one_line_error(weave("attach", "10.2.1.1/24", "netns:absent"))
    assert line.startswith("weave: attach: network namespace ") and "absent not found" in line


# --- behaviour and state files ---------------------------------------------------------------


def test_attach_prints_ips_and_records(fake: FakeDataplane, state_dir: Path) -> None:
    spec = fake.add_container("c1")
    assert ok("attach", "ip:10.2.1.1/24", "10.2.2.1/24", spec) == "10.2.1.1 10.2.2.1\n"
    assert fake.calls[-1] == (
        "attach", spec, [IF("10.2.1.1/24"), IF("10.2.2.1/24")],
        {"bridge": "weave", "multicast_route": True},
    )  # fmt: skip
    record = attachments(state_dir)[spec]
    assert record["netns"] == str(fake.root / "c1") and record["netns_id"]
    assert ok("attach", "--no-multicast-route", "10.2.1.1/24", spec) == "10.2.1.1\n"
    assert fake.calls[-1][3]["multicast_route"] is False
    assert list(attachments(state_dir)) == [spec]
    assert sorted(p.name for p in state_dir.iterdir()) == ["attachments.json", "dataplane.lock"]


def test_ps_lists_bridge_then_live_attachments(fake: FakeDataplane, state_dir: Path) -> None:
    c1, c2 = fake.add_container("c1"), fake.add_container("c2")
    ok("attach", "10.2.1.1/24", c1)
    ok("attach", "10.2.1.2/24", c2)
    mac1, mac2 = fake.ethwe[c1][0], fake.ethwe[c2][0]
    assert ok("ps").splitlines() == [
        f"weave:expose {BRIDGE_MAC}",
        f"{c1[:12]} {mac1} 10.2.1.1/24",
        f"{c2[:12]} {mac2} 10.2.1.2/24",
    ]
    assert (
        ok("ps", c2, "weave:expose") == f"{c2[:12]} {mac2} 10.2.1.2/24\nweave:expose {BRIDGE_MAC}\n"
    )
    (fake.root / "c1").unlink()  # the namespace is gone
    assert ok("ps").splitlines()[1:] == [f"{c2[:12]} {mac2} 10.2.1.2/24"]
    assert list(attachments(state_dir)) == [c2], "dead attachments are forgotten"


def test_ps_without_state_or_bridge(fake: FakeDataplane, state_dir: Path) -> None:
    fake.bridge = False
    assert ok("ps") == ""
    assert not state_dir.exists(), "ps must not create the state dir"


def test_detach_prints_removed_ips_and_forgets(fake: FakeDataplane, state_dir: Path) -> None:
    spec = fake.add_container("c1")
    ok("attach", "10.2.1.1/24", "10.2.2.1/24", spec)
    assert ok("detach", "10.2.2.1/24", "10.9.9.9/24", spec) == "10.2.2.1\n"
    assert fake.calls[-1] == ("detach", spec, [IF("10.2.2.1/24"), IF("10.9.9.9/24")])
    assert spec in attachments(state_dir)
    assert ok("detach", spec) == "10.2.1.1\n"
    assert fake.calls[-1] == ("detach", spec, None)
    assert attachments(state_dir) == {}
    assert ok("detach", spec) == ""


def test_expose_and_hide_persist_firewall_state(fake: FakeDataplane, state_dir: Path) -> None:
    def firewall() -> FirewallState:
        return FirewallState.from_json(json.loads((state_dir / "firewall.json").read_text()))

    assert ok("expose", "10.2.1.254/24", "ip:10.2.2.254/24") == "10.2.1.254 10.2.2.254\n"
    assert firewall().exposed == (
        dp.Exposed(IF("10.2.1.254/24"), True),
        dp.Exposed(IF("10.2.2.254/24"), True),
    )
    assert ok("expose", "--without-masquerade", "10.2.1.254/24") == "10.2.1.254\n"
    assert dp.Exposed(IF("10.2.1.254/24"), False) in firewall().exposed
    assert ok("ps").splitlines() == [f"weave:expose {BRIDGE_MAC} 10.2.2.254/24 10.2.1.254/24"]
    assert ok("hide", "10.2.1.254/24", "10.2.2.254/24") == "10.2.1.254 10.2.2.254\n"
    assert firewall() == FirewallState("weave", ())


def test_corrupt_firewall_state_is_refused(fake: FakeDataplane, state_dir: Path) -> None:
    state_dir.mkdir()
    (state_dir / "firewall.json").write_text("{not json")
    line = one_line_error(weave("expose", "10.2.1.254/24"))
    assert "firewall.json is not valid JSON" in line
    assert fake.bridge_cidrs == []


def test_state_dir_option_beats_env(fake: FakeDataplane, tmp_path: Path) -> None:
    spec = fake.add_container("c1")
    other = tmp_path / "other"
    ok("attach", "--state-dir", str(other), "10.2.1.1/24", spec)
    assert spec in attachments(other)


def test_ps_lines_cut_docker_ids_only() -> None:
    from weavenet.dataplane.attach import format_ps_line

    docker_id = "ab" * 32
    assert format_ps_line(docker_id, "aa:bb", []) == "abababababab aa:bb"
    assert format_ps_line("netns:wn1234-h1-c1", None, []) == "netns:wn1234-h1-c1 "
