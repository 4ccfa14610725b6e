"""Status, report and /name shapes of WeaveDNS (weave-surface.md §1.5, §1.6, §2.4)."""

from __future__ import annotations

from weavenet.core.dns.entries import Entry
from weavenet.core.dns.status import dns_report, entries_json, live_count, status_dns_text

ORIGIN = 0x4A0FF6EC1C93
LIVE = Entry("eebd81120ee4a1b2c3", ORIGIN, 0x0A200001, "one.weave.local.", 0, 0)
DEAD = Entry("dead", ORIGIN, 0x0A200002, "two.weave.local.", 1, 1600000000)
OUTSIDE = Entry("c", ORIGIN, 0x0A200003, "x.other.", 0, 0)


def test_status_dns_lines_as_go() -> None:
    assert status_dns_text("weave.local.", [LIVE, DEAD, OUTSIDE]) == (
        "one          10.32.0.1       eebd81120ee4 4a:0f:f6:ec:1c:93\n"
        "x.other.     10.32.0.3                  c 4a:0f:f6:ec:1c:93\n"
    )


def test_live_count_skips_tombstones() -> None:
    assert live_count([LIVE, DEAD, OUTSIDE]) == 2


def test_entries_json_keeps_numbers() -> None:
    assert entries_json([DEAD]) == [
        {
            "ContainerID": "dead",
            "Origin": ORIGIN,
            "Addr": 0x0A200002,
            "Hostname": "two.weave.local.",
            "Version": 1,
            "Tombstone": 1600000000,
        }
    ]


def test_report_section() -> None:
    report = dns_report("weave.local.", ["8.8.8.8"], "172.17.0.1:53", 1, [LIVE, DEAD])
    assert report["Upstream"] == ["8.8.8.8"] and report["TTL"] == 1
    assert [e["Address"] for e in report["Entries"]] == ["10.32.0.1", "10.32.0.2"]
    assert report["Entries"][0]["Origin"] == "4a:0f:f6:ec:1c:93"
