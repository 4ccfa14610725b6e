"""The DNS section of /report, `weave status`, `weave status dns` and weave_dns_entries,
from a real DnsShell holding the entries of the Go 2.8 golden files (tests/fixtures/weave28):
one registered here, one learnt by gossip from another peer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weavenet.api.dns_report import (
    dns_entries_metric,
    dns_section,
    dns_status_section,
    status_dns_text,
    status_section_text,
)
from weavenet.api.metrics import weave_metrics
from weavenet.api.status_text import render_dns, render_status, status_summary
from weavenet.core.dns.codec import encode_gossip
from weavenet.core.dns.entries import Entry
from weavenet.core.mesh.gossip import Gossiper
from weavenet.io.dns_shell import DnsSettings, DnsShell

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weave28"
US, THEM = 0xA20000000001, 0xA20000000002
C2 = Entry("anc-c2", THEM, 0x0A280000, "anc-c2.weave.local.", 0, 0)


class Handle:
    def gossip_broadcast(self, update: Any, now: float) -> None:
        pass


class StubRouter:
    name = US

    def new_gossip(self, channel: str, gossiper: Gossiper) -> Handle:
        return Handle()

    def known_peers(self) -> dict[int, str]:
        return {US: "h1", THEM: "h2"}

    def on_peer_gone(self, callback: Callable[[int, float], None]) -> None:
        pass


def golden() -> dict[str, Any]:
    report: dict[str, Any] = json.loads((FIXTURES / "h1-plain-report.json").read_text())
    return report


def with_shell(tmp_path: Path, body: Callable[[DnsShell, int], None]) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 172.31.77.254\nnameserver 127.0.0.1\n")

    async def main() -> None:
        settings = DnsSettings(resolv_conf=str(resolv))
        shell = DnsShell(StubRouter(), settings, lambda: None, lambda: time.time())
        _, port = await shell.listen("127.0.0.1", 0)
        shell.add_entry("anc-c1.weave.local.", "anc-c1", 0x0A200001)
        shell.nameserver.on_gossip(encode_gossip(int(time.time()), [C2]), 0.0)
        body(shell, port)
        await shell.stop()

    asyncio.run(main())


def test_report_section_is_gos(tmp_path: Path) -> None:
    def check(shell: DnsShell, port: int) -> None:
        expected = golden()["DNS"]
        expected["Address"] = f"127.0.0.1:{port}"  # the listen address is excluded upstream
        assert dns_section(shell) == expected

    with_shell(tmp_path, check)


def test_status_texts_match_go_directly_and_through_the_report(tmp_path: Path) -> None:
    def check(shell: DnsShell, port: int) -> None:
        report = golden()
        report["DNS"] = dns_section(shell)
        status_dns = (FIXTURES / "h1-plain-status-dns.txt").read_text()
        assert status_dns_text(shell) == status_dns == render_dns(report)
        status = (FIXTURES / "h1-plain-status.txt").read_text()
        block = status_section_text(shell)
        assert block in status and block in render_status(report)
        assert block.startswith("\n        Service: dns\n")

    with_shell(tmp_path, check)


def test_status_section_counts_what_the_report_section_lists(tmp_path: Path) -> None:
    def check(shell: DnsShell, port: int) -> None:
        def expected() -> Any:
            return status_summary({"DNS": dns_section(shell)})["DNS"]

        assert dns_status_section(shell) == expected()
        assert expected()["EntryCount"] == 2
        shell.delete_entries("anc-c1")  # a tombstone: listed in the report, not counted
        assert dns_status_section(shell) == expected()
        assert expected()["EntryCount"] == 1

    with_shell(tmp_path, check)


def test_metric_counts_live_entries_of_this_peer(tmp_path: Path) -> None:
    def check(shell: DnsShell, port: int) -> None:
        assert dns_entries_metric(shell).samples[0].value == 1
        report = golden()
        report["DNS"] = dns_section(shell)
        (family,) = [f for f in weave_metrics(report) if f.name == "weave_dns_entries"]
        assert family.samples[0].value == 1
        shell.delete_entries("anc-c1")
        assert dns_entries_metric(shell).samples[0].value == 0

    with_shell(tmp_path, check)


def test_no_entries_is_a_nil_list_and_no_upstreams_is_none(tmp_path: Path) -> None:
    async def main() -> None:
        settings = DnsSettings(resolv_conf=str(tmp_path / "missing"))
        shell = DnsShell(StubRouter(), settings, lambda: None, lambda: time.time())
        section = dns_section(shell)
        assert section["Entries"] is None and section["Address"] == ""
        assert "       Upstream: none\n" in status_section_text(shell)
        assert status_dns_text(shell) == ""
        await shell.stop()

    asyncio.run(main())
