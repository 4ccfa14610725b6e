"""The ``weaver`` command line: its options as a frozen record, and the click flags that
fill it (weave-surface.md §3 names and defaults where Weave has them)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass(frozen=True)
class Options:
    name: str | None
    nickname: str
    host: str
    port: int
    password: str | None
    conn_limit: int
    discovery: bool
    trusted_subnets: str
    state_dir: Path
    http_addr: str
    status_addr: str
    metrics_addr: str
    resume: bool
    weave_bridge: str
    ipalloc_range: str
    ipalloc_default_subnet: str
    ipalloc_init: str
    no_dns: bool
    dns_domain: str
    dns_listen_address: str
    dns_ttl: int
    dns_fallback_timeout: float
    resolv_conf: str
    dns_all_answers: bool
    peers: tuple[str, ...]
    mtu: int = 1376
    fastdp: bool = True
    fast_sleeve: bool = True


FLAGS = [
    click.option("--name", default=None, help="peer name (MAC format); default: derived and kept"),
    click.option("--nickname", default=socket.gethostname(), show_default=True),
    click.option("--host", default="", help="listen address for the mesh port"),
    click.option("--port", default=6783, type=click.IntRange(1, 65535), show_default=True),
    click.option("--password", envvar="WEAVE_PASSWORD", default=None, help="encrypt the mesh"),
    click.option("--conn-limit", default=200, type=click.IntRange(0), show_default=True),
    click.option("--no-discovery", is_flag=True, help="do not connect to peers' peers"),
    click.option("--trusted-subnets", default="", help="comma-separated CIDRs"),
    click.option(
        "--state-dir", envvar="WEAVE_STATE_DIR", default="/var/lib/weave", show_default=True
    ),
    click.option("--http-addr", envvar="WEAVE_HTTP_ADDR", default="127.0.0.1:6784"),
    click.option("--status-addr", envvar="WEAVE_STATUS_ADDR", default=""),
    click.option("--metrics-addr", default=""),
    click.option("--resume", is_flag=True, help="reuse the persisted target list"),
    click.option(
        "--weave-bridge",
        default="",
        help="bridge for containers, with the sleeve overlay (weave launch passes 'weave');"
        " empty: control plane only",
    ),
    click.option("--ipalloc-range", default="", help="IPAM universe (CIDR); empty: IPAM off"),
    click.option("--ipalloc-default-subnet", default="", help="default: the --ipalloc-range"),
    click.option("--ipalloc-init", default="", help="consensus[=N], seed=NAME,... or observer"),
    click.option("--no-dns", is_flag=True, help="disable WeaveDNS"),
    click.option(
        "--dns-domain",
        default="weave.local.",
        show_default=True,
        help="the domain WeaveDNS answers for",
    ),
    click.option(
        "--dns-listen-address",
        default="",
        help="IP:PORT for the DNS server (UDP and TCP); default: an address on the "
        "weave bridge in every attached subnet, port 53",
    ),
    click.option(
        "--dns-ttl",
        default=1,
        type=click.IntRange(0, 2**31 - 1),
        show_default=True,
        help="TTL of WeaveDNS answers, seconds",
    ),
    click.option(
        "--dns-fallback-timeout",
        default=5.0,
        type=click.FloatRange(0.1, 60),
        show_default=True,
        help="seconds to wait for each upstream server",
    ),
    click.option(
        "--resolv-conf",
        default="/etc/resolv.conf",
        show_default=True,
        help="where the upstream servers for other names are read",
    ),
    click.option(
        "--dns-all-answers",
        is_flag=True,
        help="answer every address of a name in a fresh random order, as Weave does "
        "(default: one address chosen at random per query)",
    ),
    click.option(
        "--mtu",
        envvar="WEAVE_MTU",
        default=1376,
        type=click.IntRange(576, 65000),
        show_default=True,
        help="fastdp MTU; checked against the underlay at launch",
    ),
    click.option(
        "--no-fastdp", is_flag=True, help="no kernel VXLAN (the fast sleeve and sleeve remain)"
    ),
    click.option(
        "--no-fast-sleeve",
        is_flag=True,
        help="no TSO-superframe sleeve (UDP mesh port + 2) between our routers",
    ),
    click.option(
        "--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"])
    ),
    click.option("--version", "show_version", is_flag=True, help="print the version and exit"),
    click.option("--print-peer-name", is_flag=True, help="print the peer name and exit"),
    click.argument("peers", nargs=-1),
]


def with_flags(func: Callable[..., None]) -> Callable[..., None]:
    for flag in reversed(FLAGS):
        func = flag(func)
    return func
