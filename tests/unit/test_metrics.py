"""Prometheus metrics: names, label order and values match the reference router."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from weavenet.api.metrics import render_metrics
from weavenet.api.testing import FakeRouterControl, sample_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weave28"


def scrape(report: dict[str, Any]) -> str:
    body, content_type = render_metrics(FakeRouterControl(report))
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return body.decode()


def weave_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if "weave_" in ln]


def fixture_report(name: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return report


def test_weave_metrics_match_reference_router_plain_and_encrypted() -> None:
    for sample in ("h1-plain", "h1-enc"):
        ours = weave_lines(scrape(fixture_report(f"{sample}-report.json")))
        reference = (FIXTURES / f"{sample}-metrics.txt").read_text()
        # The reference prints 1048576 as 1.048576e+06: compare values numerically.
        assert [_normalise(ln) for ln in ours] == [_normalise(ln) for ln in weave_lines(reference)]


def _normalise(line: str) -> str:
    if line.startswith("#"):
        return line
    name, _, value = line.rpartition(" ")
    return f"{name} {float(value)!r}"


def test_connection_labels_are_alphabetical_and_grep_compatible() -> None:
    text = scrape(fixture_report("h1-enc-report.json"))
    assert re.search(r'^weave_connections.*encryption="yes",state="established"', text, re.M)
    for line in text.splitlines():
        if line.startswith("weave_connections{"):
            labels = re.findall(r'(\w+)="', line)
            assert labels == ["encryption", "state", "type"]


def connection(state: str, **attrs: Any) -> dict[str, Any]:
    return {"Address": "x:1", "Outbound": True, "State": state, "Info": "", "Attrs": attrs}


def test_both_encryption_values_for_every_state_and_type_seen() -> None:
    report = sample_report()
    report["Router"]["Connections"] = [
        connection("established", name="fastdp", encrypted=True),
        connection("established", name="fastdp"),
        connection("established", name="sleeve"),
        connection("pending", name="sleeve", encrypted=True),
        connection("connecting"),
    ]
    samples = [ln for ln in scrape(report).splitlines() if ln.startswith("weave_connections{")]
    assert samples == [
        'weave_connections{encryption="",state="connecting",type="unknown"} 1',
        'weave_connections{encryption="",state="established",type="fastdp"} 1',
        'weave_connections{encryption="",state="established",type="sleeve"} 1',
        'weave_connections{encryption="",state="pending",type="sleeve"} 0',
        'weave_connections{encryption="yes",state="connecting",type="unknown"} 0',
        'weave_connections{encryption="yes",state="established",type="fastdp"} 1',
        'weave_connections{encryption="yes",state="established",type="sleeve"} 0',
        'weave_connections{encryption="yes",state="pending",type="sleeve"} 1',
    ]


def test_terminations_counter_reads_the_report_at_scrape_time() -> None:
    control = FakeRouterControl()
    control.state["Router"]["TerminationCount"] = 3
    assert "weave_connection_terminations_total 3\n" in render_metrics(control)[0].decode()
    control.state["Router"]["TerminationCount"] = 4
    text = render_metrics(control)[0].decode()
    assert "weave_connection_terminations_total 4\n" in text
    assert "# TYPE weave_connection_terminations_total counter" in text


def test_ipam_and_dns_metrics_only_when_sections_exist() -> None:
    report = sample_report()
    del report["IPAM"], report["DNS"]
    report["Router"]["Connections"] = []
    names = {ln.split()[2] for ln in scrape(report).splitlines() if ln.startswith("# TYPE weave")}
    assert names == {"weave_connection_terminations_total"}


def test_ipam_unreachable_and_pending_metrics() -> None:
    report = sample_report()
    report["IPAM"]["Entries"][1]["IsKnownPeer"] = False
    report["IPAM"]["PendingAllocates"] = ["c1 10.32.0.0/12", "c2 10.32.0.0/12"]
    report["IPAM"]["PendingClaims"] = [{"Ident": "c3", "CIDR": "10.32.0.9/12"}]
    text = scrape(report)
    assert "weave_ipam_unreachable_count 1\n" in text
    assert "weave_ipam_unreachable_percentage 50\n" in text
    assert "weave_ipam_pending_allocates 2\n" in text
    assert "weave_ipam_pending_claims 1\n" in text
    assert 'weave_ips{state="local-used"} 1\n' in text


def test_dns_entries_counts_live_entries_originated_here() -> None:
    report = sample_report()
    me = report["Router"]["Name"]
    entry = {"Hostname": "a.weave.local.", "Origin": me, "Tombstone": 0}
    report["DNS"]["Entries"] = [entry, entry | {"Origin": "other"}, entry | {"Tombstone": 9}]
    assert "weave_dns_entries 1\n" in scrape(report)


def test_fastdp_flow_count() -> None:
    report = sample_report()
    report["Router"]["OverlayDiagnostics"] = {"fastdp": {"Vports": [], "Flows": [{}, {}]}}
    assert "weave_flows 2\n" in scrape(report)


def test_process_metrics_present_and_families_sorted() -> None:
    text = scrape(sample_report())
    assert "process_cpu_seconds_total" in text
    families = [ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE weave")]
    assert families == sorted(families)


def test_the_fast_sleeve_counts_as_its_own_connection_type() -> None:
    report = sample_report()
    report["Router"]["Connections"] = [
        connection("established", name="fast sleeve", encrypted=True),
        connection("established", name="fast sleeve"),
        connection("established", name="fastdp"),
    ]
    text = scrape(report)
    assert 'weave_connections{encryption="yes",state="established",type="fast sleeve"} 1' in text
    assert 'weave_connections{encryption="",state="established",type="fast sleeve"} 1' in text
