"""`weave status` texts: goldens from the reference router plus the template semantics."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from weavenet.api.status_text import (
    ipam_status,
    render_connections,
    render_dns,
    render_ipam,
    render_peers,
    render_status,
    render_status_report,
    render_targets,
    status_summary,
    version_check_text,
)
from weavenet.api.testing import sample_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weave28"


def load(name: str) -> Any:
    text = (FIXTURES / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


# -- goldens -------------------------------------------------------------------

GOLDENS = [
    ("h1-plain-report.json", render_status, "h1-plain-status.txt"),
    ("h1-enc-report.json", render_status, "h1-enc-status.txt"),
    ("h2-plain-report.json", render_status, "h2-plain-status.txt"),
    ("h1-plain-report.json", render_connections, "h1-plain-status-connections.txt"),
    ("h1-enc-report.json", render_connections, "h1-enc-status-connections.txt"),
    ("h1-plain-report.json", render_peers, "h1-plain-status-peers.txt"),
    ("h1-plain-report.json", render_targets, "h1-plain-status-targets.txt"),
    ("h1-plain-report.json", render_dns, "h1-plain-status-dns.txt"),
    ("h1-plain-report.json", render_ipam, "h1-plain-status-ipam.txt"),
]


@pytest.mark.parametrize(("report", "render", "expected"), GOLDENS)
def test_golden(report: str, render: Any, expected: str) -> None:
    assert render(load(report)) == load(expected)


def test_status_starts_with_version_and_ends_with_newline() -> None:
    text = render_status(load("h1-plain-report.json"))
    assert text.startswith("        Version: ")
    assert text.endswith("        Entries: 2\n")


def test_encrypted_connection_attrs_are_concatenated_in_key_order() -> None:
    # The Go template prints " key=value" pairs with no separator: a known quirk.
    line = render_connections(load("h1-enc-report.json"))
    assert line.endswith(" encrypted=truemtu=1414\n")


# -- router section ------------------------------------------------------------


def router_lines_of(text: str) -> dict[str, str]:
    return {ln[:15].strip(): ln[17:] for ln in text.splitlines() if ln[15:17] == ": "}


def router_lines(report: dict[str, Any]) -> dict[str, str]:
    return router_lines_of(render_status(report))


def conn(state: str, outbound: bool = True, **attrs: Any) -> dict[str, Any]:
    return {
        "Address": "10.0.0.9:6783",
        "Outbound": outbound,
        "State": state,
        "Info": "",
        "Attrs": attrs,
    }


def test_connection_counts_in_go_order_with_zero_counts_omitted() -> None:
    report = sample_report()
    report["Router"]["Connections"] = [
        conn("connecting"),
        conn("failed"),
        conn("established"),
        conn("established"),
        conn("retrying"),
    ]
    assert router_lines(report)["Connections"] == (
        "5 (2 established, 1 retrying, 1 failed, 1 connecting)"
    )


def test_no_connections_has_no_parenthesis() -> None:
    report = sample_report()
    report["Router"]["Connections"] = []
    report["Router"]["Peers"] = [report["Router"]["Peers"][0] | {"Connections": []}]
    lines = router_lines(report)
    assert lines["Connections"] == "0"
    assert lines["Peers"] == "1"


def test_peer_counts_include_pending() -> None:
    report = sample_report()
    report["Router"]["Peers"][1]["Connections"][0]["Established"] = False
    assert router_lines(report)["Peers"] == "2 (with 1 established, 1 pending connections)"
    report["Router"]["Peers"][0]["Connections"][0]["Established"] = False
    assert router_lines(report)["Peers"] == "2 (with 2 pending connections)"


def test_status_report_counts_of_zero_are_not_printed() -> None:
    # the router's status report counts every state, zeros included; the summary of a
    # full report only has the states that occur: both print alike
    report = sample_report()
    report["Router"]["Peers"][1]["Connections"][0]["Established"] = False
    summary = status_summary(report)
    router = summary["Router"]
    assert router["PeerConnectionCounts"] == {"established": 1, "pending": 1}
    assert router["ConnectionCounts"] == {"established": 1}
    router["ConnectionCounts"] = {"established": 1, "pending": 0, "failed": 0}
    assert render_status_report(summary) == render_status(report)
    router["PeerConnectionCounts"] = {"established": 0, "pending": 2}
    assert router_lines_of(render_status_report(summary))["Peers"] == (
        "2 (with 2 pending connections)"
    )


def test_protocol_single_version_and_other_router_fields() -> None:
    report = sample_report()
    report["Router"].update(
        ProtocolMinVersion=2,
        Encryption=True,
        PeerDiscovery=False,
        Targets=["10.0.0.5", "10.0.0.6:6783"],
        TrustedSubnets=["10.0.0.0/8", "192.168.0.0/16"],
    )
    lines = router_lines(report)
    assert lines["Protocol"] == "weave 2"
    assert lines["Name"] == "a2:00:00:00:00:01(host1)"
    assert lines["Encryption"] == "enabled"
    assert lines["PeerDiscovery"] == "disabled"
    assert lines["Targets"] == "2"
    assert lines["TrustedSubnets"] == "10.0.0.0/8, 192.168.0.0/16"


def test_sections_absent_when_services_disabled() -> None:
    report = sample_report()
    del report["IPAM"], report["DNS"]
    text = render_status(report)
    assert "Service: ipam" not in text and "Service: dns" not in text
    assert text.endswith(" TrustedSubnets: none\n")


def test_dns_section_counts_live_entries_and_lists_upstreams() -> None:
    report = sample_report()
    live = {"Hostname": "a.weave.local.", "Tombstone": 0}
    report["DNS"]["Entries"] = [live, live | {"Tombstone": 1700000000}, live]
    report["DNS"]["Upstream"] = ["8.8.8.8", "8.8.4.4"]
    lines = router_lines(report)
    assert lines["Entries"] == "2"
    assert lines["Upstream"] == "8.8.8.8, 8.8.4.4"
    report["DNS"]["Upstream"] = []
    assert router_lines(report)["Upstream"] == "none"


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (None, "version check update disabled"),
        ({"Enabled": False}, "version check update disabled"),
        (
            {"Enabled": True, "Success": False, "NextCheckAt": "2021-01-25T18:40:52.123Z"},
            "failed to check latest version - see logs; next check at 2021/01/25 18:40:52",
        ),
        (
            {"Enabled": True, "Success": True, "NewVersion": "2.9.0"},
            "version 2.9.0 available - please upgrade!",
        ),
        (
            {
                "Enabled": True,
                "Success": True,
                "NewVersion": "",
                "NextCheckAt": "2021-01-25T18:40:52Z",
            },
            "up to date; next check at 2021/01/25 18:40:52",
        ),
    ],
)
def test_version_check_text(check: dict[str, Any] | None, expected: str) -> None:
    assert version_check_text(check) == expected


# -- IPAM ------------------------------------------------------------------------


def ipam(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = copy.deepcopy(sample_report()["IPAM"])
    base.update(fields)
    return base


def test_ipam_status_variants() -> None:
    entries = ipam()["Entries"]
    unreachable = [e | {"IsKnownPeer": False} for e in entries]
    assert ipam_status(ipam()) == "ready"
    assert ipam_status(ipam(PendingAllocates=["c1 10.32.0.0/12"])) == (
        "waiting for IP(s) to become available"
    )
    assert ipam_status(ipam(Entries=unreachable)).startswith("all IP ranges owned by unreachable")
    paxos = {"Elector": True, "Quorum": 2, "KnownNodes": 1}
    assert ipam_status(ipam(Entries=[], Paxos=paxos)) == "awaiting consensus (quorum: 2, known: 1)"
    assert ipam_status(ipam(Entries=[], Paxos={"Elector": False})) == "priming"
    assert ipam_status(ipam(Entries=[], Paxos=None)) == "idle"


def test_explicit_ipam_status_wins() -> None:
    assert ipam_status(ipam(Status="priming")) == "priming"
    report = sample_report()
    report["IPAM"]["Status"] = "idle"
    assert router_lines(report)["Status"] == "idle"


def test_ipam_view_marks_unreachable_peers_and_is_empty_without_ring() -> None:
    report = sample_report()
    report["IPAM"]["Entries"][1]["IsKnownPeer"] = False
    lines = render_ipam(report).splitlines()
    assert lines[0].startswith("a2:00:00:00:00:01(host1)") and lines[0].endswith("(1 active)")
    assert lines[1].endswith("IPs (50.0% of total) - unreachable!")
    report["IPAM"]["Entries"] = []
    assert render_ipam(report) == ""


# -- sub-views -------------------------------------------------------------------


def test_connections_without_info_or_attrs_keep_go_spacing() -> None:
    report = sample_report()
    report["Router"]["Connections"] = [conn("connecting"), conn("retrying", outbound=False)]
    report["Router"]["Connections"][1]["Info"] = "dial tcp4 10.0.0.9:6783: connection refused"
    assert render_connections(report) == (
        "-> 10.0.0.9:6783         connecting   \n"
        "<- 10.0.0.9:6783         retrying    dial tcp4 10.0.0.9:6783: connection refused \n"
    )


def test_targets_one_per_line() -> None:
    report = sample_report()
    report["Router"]["Targets"] = ["10.0.0.5", "host2:6783"]
    assert render_targets(report) == "10.0.0.5\nhost2:6783\n"


def test_dns_view_truncates_container_id_and_skips_tombstones() -> None:
    report = sample_report()
    report["DNS"]["Entries"] = [
        {"Hostname": "web.weave.local.", "Origin": "o1", "ContainerID": "0123456789abcdef",
         "Address": "10.32.0.7", "Tombstone": 0},
        {"Hostname": "gone.weave.local.", "Origin": "o1", "ContainerID": "x",
         "Address": "10.32.0.8", "Tombstone": 5},
    ]  # fmt: skip
    assert render_dns(report) == "web          10.32.0.7       0123456789ab o1\n"
