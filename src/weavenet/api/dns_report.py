"""WeaveDNS in /report, `weave status`, `weave status dns` and /metrics, in Go's formats.

The shapes come from weavenet.core.dns.status (Go nameserver/status.go and the
templates of prog/weaver/http.go). ``dns_section`` is the "DNS" key of /report; the
existing renderers of api.status_text and api.metrics already read that key, so mounting
the section (with ``dns_status_section``, its /status form) is all the router needs. The
direct functions here (``status_section_text``, ``status_dns_text``, ``dns_entries_metric``)
give the same texts and metric straight from a running DnsShell, for callers that have no
report at hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from weavenet.core.dns.entries import Entry
from weavenet.core.dns.status import dns_report, live_count
from weavenet.core.dns.status import status_dns_text as _dns_lines

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

LABEL_WIDTH = 15  # as api.status_text: "        Service: dns"


class DnsReportSource(Protocol):
    """What the report needs (weavenet.io.dns_shell.DnsShell implements it)."""

    @property
    def domain(self) -> str: ...
    @property
    def ttl(self) -> int: ...
    def dns_address(self, client_ip: str | None = None) -> str | None: ...
    def upstream_servers(self) -> tuple[str, ...]: ...
    def entries(self) -> list[Entry]: ...
    def local_entry_count(self) -> int: ...


def dns_section(source: DnsReportSource) -> dict[str, Any]:
    """The "DNS" section of /report (surface §1.6): Domain, Upstream, Address, TTL, Entries.
    Address is the first listen address ("" before any exists; Go always has one)."""
    section = dns_report(
        source.domain,
        source.upstream_servers(),
        source.dns_address() or "",
        source.ttl,
        source.entries(),
    )
    if not section["Entries"]:
        section["Entries"] = None  # Go's nil slice
    return section


def dns_status_section(source: DnsReportSource) -> dict[str, Any]:
    """The "DNS" part of the /status report (``RouterControl.status_report``): what
    ``weave status`` prints, the entries counted rather than each made a dict."""
    return {
        "Domain": source.domain,
        "Upstream": list(source.upstream_servers()),
        "TTL": source.ttl,
        "EntryCount": live_count(source.entries()),
    }


def _line(label: str, value: object) -> str:
    return f"{label:>{LABEL_WIDTH}}: {value}\n"


def status_section_text(source: DnsReportSource) -> str:
    """The DNS block of `weave status` (Go's statusTemplate)."""
    upstream = ", ".join(source.upstream_servers()) or "none"
    return (
        "\n"
        + _line("Service", "dns")
        + _line("Domain", source.domain)
        + _line("Upstream", upstream)
        + _line("TTL", source.ttl)
        + _line("Entries", live_count(source.entries()))
    )


def status_dns_text(source: DnsReportSource) -> str:
    """`weave status dns` (Go's dnsEntriesTemplate): one line per live entry."""
    return _dns_lines(source.domain, source.entries())


def dns_entries_metric(source: DnsReportSource) -> Metric:
    """weave_dns_entries: live entries this peer originated (Go countDNSEntriesForPeer)."""
    from prometheus_client.metrics_core import GaugeMetricFamily  # only scrapes need it

    family = GaugeMetricFamily("weave_dns_entries", "Number of DNS entries.")
    family.add_metric([], source.local_entry_count())
    return family
