"""`weave attach|detach|expose|hide|prime|rmpeer|ps` against a fake router on loopback:
which IPAM calls are made, what is printed, and how a blocked allocation is shown and
abandoned."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import weavenet.dataplane as dp
from tests.unit.fake_router import FakeAttachments, FakeIpam, build_app
from weavenet.api.testing import serve_in_thread
from weavenet.cli.main import main
from weavenet.core.attachments import Attachment
from weavenet.dataplane import ContainerAddresses, ContainerRef, DataplaneError
from weavenet.dataplane.observe import netns_identity
from weavenet.harness import wait_until
from weavenet.io.store import Store

IF = ipaddress.IPv4Interface
AWAITING = "awaiting consensus (quorum: 2, known: 1)"
WHY = "consensus: 1 of the 2 peers needed for a quorum are known"


@pytest.fixture
def ipam() -> FakeIpam:
    return FakeIpam()


@pytest.fixture
def attachments() -> FakeAttachments:
    return FakeAttachments()


@pytest.fixture
def router(
    ipam: FakeIpam, attachments: FakeAttachments, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    with serve_in_thread(build_app(ipam, attachments)) as addr:
        monkeypatch.setenv("WEAVE_HTTP_ADDR", addr)
        yield addr


@pytest.fixture
def no_ipam_router(attachments: FakeAttachments, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with serve_in_thread(build_app(FakeIpam(enabled=False), attachments)) as addr:
        monkeypatch.setenv("WEAVE_HTTP_ADDR", addr)
        yield addr


@pytest.fixture
def containers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """netns:NAME resolves to the file tmp_path/NAME, if it exists; ethwe is empty."""

    def resolve(spec: str, netns: str | None = None) -> ContainerRef:
        path = tmp_path / spec.removeprefix("netns:")
        if not spec.startswith("netns:") or not path.exists():
            raise DataplaneError(f"network namespace {path} not found")
        return ContainerRef(spec, str(path))

    monkeypatch.setattr(dp, "resolve_container", resolve)
    monkeypatch.setattr(dp, "container_addresses", lambda ref: ContainerAddresses(None, []))
    monkeypatch.setattr(dp, "bridge_addresses", lambda name: ("02:00:00:00:00:01", []))
    monkeypatch.setenv("WEAVE_STATE_DIR", str(tmp_path / "state"))
    for name in ("c1", "c2"):
        (tmp_path / name).write_text("")
    return tmp_path


def weave(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def ok(*args: str) -> str:
    result = weave(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def test_attach_without_address_allocates_in_the_default_subnet(
    router: str, containers: Path, ipam: FakeIpam, attachments: FakeAttachments
) -> None:
    assert ok("attach", "netns:c1") == "10.32.0.1\n"
    assert ipam.calls == [("allocate", "netns:c1", "10.32.0.0/12")]
    (req,) = attachments.requests
    assert (req.ident, req.cidrs, req.multicast_route) == ("netns:c1", (IF("10.32.0.1/12"),), True)
    assert req.netns_path == str(containers / "c1")
    assert ok("attach", "net:default", "--no-multicast-route", "netns:c2") == "10.32.0.2\n"
    assert attachments.requests[-1].multicast_route is False


def test_attach_mixes_subnets_and_claims(
    router: str, containers: Path, ipam: FakeIpam, attachments: FakeAttachments
) -> None:
    out = ok("attach", "net:10.2.0.0/16", "ip:10.3.1.1/24", "10.4.1.1/24", "netns:c1")
    assert out == "10.2.0.1 10.3.1.1 10.4.1.1\n"
    assert ipam.calls == [
        ("allocate", "netns:c1", "10.2.0.0/16"),
        ("claim", "netns:c1", "10.3.1.1/24"),
        ("claim", "netns:c1", "10.4.1.1/24"),
    ]
    assert attachments.requests[0].cidrs == (
        IF("10.2.0.1/16"),
        IF("10.3.1.1/24"),
        IF("10.4.1.1/24"),
    )


def test_a_failed_attach_gives_back_what_was_allocated(
    router: str, containers: Path, ipam: FakeIpam, attachments: FakeAttachments
) -> None:
    attachments.refuse = "attach netns:c1: Operation not permitted"
    result = weave("attach", "net:default", "10.2.1.1/24", "netns:c1")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "weave: attach: attach netns:c1: Operation not permitted\n"
    assert ipam.calls[-1] == ("free", "netns:c1", "10.32.0.1"), "the claim is the user's"


def test_ipam_disabled(no_ipam_router: str, containers: Path) -> None:
    assert ok("attach", "10.2.1.1/24", "netns:c1") == "10.2.1.1\n", "explicit addresses proceed"
    for args in (["net:10.2.0.0/16", "netns:c1"], ["netns:c2"]):
        result = weave("attach", *args)
        assert result.exit_code == 1 and result.stdout == ""
        assert (
            result.stderr == "weave: attach: IP address allocation must be enabled to use 'net:'\n"
        )


def test_waiting_is_shown_and_timeout_cancels(
    router: str, containers: Path, ipam: FakeIpam, attachments: FakeAttachments
) -> None:
    ipam.ready, ipam.status, ipam.awaiting = False, AWAITING, WHY
    result = weave("attach", "--timeout", "1.5", "netns:c1")
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"Waiting for IP address allocation: {AWAITING} - {WHY}"
    assert lines[-1] == (
        f"weave attach: timed out after 1.5s waiting for an IP address: {AWAITING} - {WHY}"
    )
    assert len(lines) == 2, "the same status is printed once"
    wait_until(lambda: ipam.cancelled == ["allocate netns:c1"], timeout=5, message="cancelled")
    assert attachments.requests == []


def test_waiting_then_allocated(router: str, containers: Path, ipam: FakeIpam) -> None:
    ipam.ready, ipam.status, ipam.awaiting = False, AWAITING, WHY
    ipam.ready_after_reports = 2  # the ring forms while the CLI watches
    result = weave("attach", "netns:c1")
    assert result.exit_code == 0 and result.stdout == "10.32.0.1\n"
    assert result.stderr.splitlines()[0] == f"Waiting for IP address allocation: {AWAITING} - {WHY}"


def test_router_not_running(
    containers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVE_HTTP_ADDR", str(tmp_path / "nothing.sock"))
    result = weave("attach", "netns:c1")
    assert result.exit_code == 1
    assert result.stderr.startswith("weave: attach: weave router is not running at ")
    assert result.stderr.endswith("start it with 'weave launch'\n")


def test_detach_frees_only_what_the_router_kept(
    router: str, containers: Path, ipam: FakeIpam
) -> None:
    ok("attach", "net:default", "10.2.1.1/24", "netns:c1")
    ipam.calls.clear()
    assert ok("detach", "10.2.1.1/24", "netns:c1") == "10.2.1.1\n"
    assert ipam.calls == [("free", "netns:c1", "10.2.1.1")], "partial: the CLI frees it"
    ipam.calls.clear()
    assert ok("detach", "netns:c1") == "10.32.0.1\n"
    assert ipam.calls == [], "dropped: the router released the ident itself"
    assert ok("detach", "netns:c1") == ""


def test_detach_net_looks_up_ipam(router: str, containers: Path, ipam: FakeIpam) -> None:
    ok("attach", "netns:c1")
    assert ok("detach", "net:default", "netns:c1") == "10.32.0.1\n"
    assert ("lookup", "netns:c1", "") in ipam.calls


def test_expose_and_hide_without_addresses(
    router: str, containers: Path, ipam: FakeIpam, attachments: FakeAttachments
) -> None:
    assert ok("expose") == "10.32.0.1\n"
    assert ok("expose", "--without-masquerade", "10.2.1.254/24") == "10.2.1.254\n"
    assert attachments.exposed == [(IF("10.32.0.1/12"), True), (IF("10.2.1.254/24"), False)]
    assert ("allocate", "weave:expose", "10.32.0.0/12") in ipam.calls
    ipam.calls.clear()
    assert ok("hide") == "10.32.0.1 10.2.1.254\n"
    assert attachments.exposed == []
    frees = [("free", "weave:expose", "10.32.0.1"), ("free", "weave:expose", "10.2.1.254")]
    assert ipam.calls == frees


def test_prime_waits_and_times_out(router: str, ipam: FakeIpam) -> None:
    assert ok("prime") == ""
    ipam.ready, ipam.status = False, "priming"
    result = weave("prime", "--timeout", "1")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "weave prime: timed out after 1s waiting for an IP address: priming"
    )
    wait_until(lambda: ipam.cancelled == ["prime"], timeout=5, message="prime cancelled")


def test_prime_without_ipam(no_ipam_router: str) -> None:
    result = weave("prime")
    assert result.exit_code == 1 and "IP address allocation is disabled" in result.stderr


def test_rmpeer_prints_what_was_taken_over(router: str, ipam: FakeIpam) -> None:
    assert ok("rmpeer", "h2", "aa:bb") == (
        "3 IPs taken over from h2\n3 IPs taken over from aa:bb\n"
    )


def test_ps_reads_the_store_while_the_router_is_down(
    containers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = containers / "state"
    c1 = str(containers / "c1")
    gone = Attachment("netns:gone", "netns:gone", "/nonexistent", "1:1", (IF("10.2.1.9/24"),),
                      mac="02:00:00:00:00:09")  # fmt: skip
    live = Attachment("netns:c1", "netns:c1", c1, netns_identity(c1) or "", (IF("10.2.1.1/24"),))
    store = Store(state)
    store.save_attachments(put=[live, gone])
    store.close()
    expected = [
        "weave:expose 02:00:00:00:00:01",
        "netns:c1  10.2.1.1/24",  # no ethwe in the kernel (yet): what the router persisted
        "netns:gone 02:00:00:00:00:09 10.2.1.9/24",
    ]
    assert ok("ps").splitlines() == expected
    kernel = ContainerAddresses("02:00:00:00:00:0c", [IF("10.2.1.1/24"), IF("10.2.7.7/24")])
    monkeypatch.setattr(dp, "container_addresses", lambda ref: kernel)
    expected[1] = "netns:c1 02:00:00:00:00:0c 10.2.1.1/24 10.2.7.7/24"  # what the kernel has
    assert ok("ps").splitlines() == expected
    assert ok("ps", "netns:c1") == expected[1] + "\n"
