"""The IPAM section of /report built from an IpamStatus, and what `weave status`,
`weave status ipam` and /metrics make of it, compared with the Go samples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec.structs

from weavenet.api.ipam_report import ipam_report, ipam_status_section
from weavenet.api.metrics import weave_metrics
from weavenet.api.status_text import render_ipam, render_status, status_summary
from weavenet.core.ipam.address import CIDR, parse_address
from weavenet.core.ipam.allocator import IpamStatus, RingEntryInfo
from weavenet.core.ipam.paxos import PaxosInfo
from weavenet.core.peername import parse_peer_name

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weave28"
H1, H2 = parse_peer_name("a2:00:00:00:00:01"), parse_peer_name("a2:00:00:00:00:02")
UNIVERSE = CIDR.parse("10.32.0.0/12")


def entry(token: str, peer: int, nick: str, known: bool = True) -> RingEntryInfo:
    return RingEntryInfo(parse_address(token), 524288, peer, nick, known, 1)


READY = IpamStatus(
    status="ready",
    awaiting="",
    ring_ready=True,
    paxos=None,
    universe=UNIVERSE,
    range_num_ips=1 << 20,
    active_ips=1,
    default_subnet=UNIVERSE,
    entries=(entry("10.32.0.0", H1, "anc-h1"), entry("10.40.0.0", H2, "anc-h2")),
    pending_claims=(),
    pending_allocates=(),
    unreachable_count=0,
    unreachable_percentage=0.0,
)

AWAITING = msgspec.structs.replace(
    READY,
    status="awaiting consensus (quorum: 2, known: 1)",
    awaiting="consensus: 1 of the 2 peers needed for a quorum are known",
    ring_ready=False,
    paxos=PaxosInfo(elector=True, known_nodes=1, quorum=2),
    active_ips=0,
    entries=(),
    pending_allocates=("c1 10.32.0.0/12",),
)


def go_report() -> dict[str, Any]:
    report: dict[str, Any] = json.loads((FIXTURES / "h1-plain-report.json").read_text())
    return report


def our_report(status: IpamStatus) -> dict[str, Any]:
    report = go_report()
    report["IPAM"] = ipam_report(status)
    return report


def test_report_section_has_go_fields_in_order_plus_ours() -> None:
    section = ipam_report(READY)
    expected = dict(go_report()["IPAM"], Status="ready", Awaiting="")
    assert section == expected
    assert list(section) == list(expected)  # JSON field order as Go's


def test_report_while_awaiting_consensus() -> None:
    section = ipam_report(AWAITING)
    assert section["Paxos"] == {"Elector": True, "KnownNodes": 1, "Quorum": 2}
    assert section["Entries"] is None and section["PendingClaims"] is None
    assert section["PendingAllocates"] == ["c1 10.32.0.0/12"]
    claims = ipam_report(
        msgspec.structs.replace(AWAITING, pending_claims=(("c2", CIDR.parse("10.32.0.9/12")),))
    )
    assert claims["PendingClaims"] == [{"Ident": "c2", "CIDR": "10.32.0.9/12"}]


def test_status_texts_match_the_go_samples() -> None:
    report = our_report(READY)
    assert render_status(report) == (FIXTURES / "h1-plain-status.txt").read_text()
    assert render_ipam(report) == (FIXTURES / "h1-plain-status-ipam.txt").read_text()


def test_status_ipam_lists_unreachable_owners() -> None:
    status = msgspec.structs.replace(
        READY,
        entries=(READY.entries[0], msgspec.structs.replace(READY.entries[1], is_known_peer=False)),
    )
    lines = render_ipam(our_report(status)).splitlines()
    assert lines[0].startswith("a2:00:00:00:00:01(anc-h1)") and lines[0].endswith("(1 active)")
    assert lines[1].endswith("IPs (50.0% of total) - unreachable!")


def test_without_a_ring_we_say_what_is_awaited_where_go_prints_nothing() -> None:
    report = our_report(AWAITING)
    assert render_ipam(report) == (
        "         Status: awaiting consensus (quorum: 2, known: 1)\n"
        "       Awaiting: consensus: 1 of the 2 peers needed for a quorum are known\n"
    )
    status = render_status(report)
    assert "         Status: awaiting consensus (quorum: 2, known: 1)\n" in status
    assert "       Awaiting: consensus: 1 of the 2 peers" in status
    # a Go report (no Status field) still renders as Go does: nothing
    go = go_report()
    go["IPAM"]["Entries"] = None
    assert render_ipam(go) == ""
    idle = our_report(msgspec.structs.replace(AWAITING, status="idle", awaiting="", paxos=None))
    assert render_ipam(idle) == "         Status: idle\n"


def test_status_section_is_what_status_reads_of_the_report_section() -> None:
    unreachable = msgspec.structs.replace(
        READY, entries=tuple(msgspec.structs.replace(e, is_known_peer=False) for e in READY.entries)
    )
    waiting = msgspec.structs.replace(READY, status="waiting for IP(s) to become available")
    idle = msgspec.structs.replace(AWAITING, status="idle", awaiting="", paxos=None)
    for status in (READY, AWAITING, unreachable, waiting, idle):
        expected = status_summary(our_report(status))["IPAM"]
        assert ipam_status_section(status) == expected
        assert expected["Status"] == status.status and expected["Awaiting"] == status.awaiting


def metrics(report: dict[str, Any]) -> dict[str, float]:
    return {
        sample.name
        + ("" if not sample.labels else str(sorted(sample.labels.items()))): sample.value
        for family in weave_metrics(report)
        for sample in family.samples
        if "ip" in sample.name
    }


def test_metrics_from_our_report() -> None:
    assert metrics(our_report(READY)) == {
        "weave_ipam_pending_allocates": 0,
        "weave_ipam_pending_claims": 0,
        "weave_ipam_unreachable_count": 0,
        "weave_ipam_unreachable_percentage": 0.0,
        "weave_ips[('state', 'local-used')]": 1,
        "weave_max_ips": 1 << 20,
    }
    unreachable = msgspec.structs.replace(
        READY,
        entries=(READY.entries[0], msgspec.structs.replace(READY.entries[1], is_known_peer=False)),
    )
    values = metrics(our_report(unreachable))
    assert values["weave_ipam_unreachable_count"] == 1
    assert values["weave_ipam_unreachable_percentage"] == 50.0
    assert metrics(our_report(AWAITING))["weave_ipam_pending_allocates"] == 1


def test_no_ipam_metrics_when_disabled() -> None:
    report = copy.deepcopy(go_report())
    del report["IPAM"]
    assert metrics(report) == {}
