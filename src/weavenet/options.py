"""The ``weaver`` command line: its options as a frozen record, and the click flags that
fill it (weave-surface.md §3 names and defaults where Weave has them)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import click
import msgspec


class Options(msgspec.Struct, frozen=True):
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
    cni_runtimes: tuple[str, ...] = ()
    cni_gc_period: float = 30.0
    cni_gc_min_age: float = 30.0
    # the Docker API proxy (weave-surface.md §3, proxy flags)
    proxy: bool = False
    proxy_hosts: tuple[str, ...] = ()
    hostname_from_label: str = ""
    hostname_match: str = "(.*)"
    hostname_replacement: str = "$1"
    rewrite_inspect: bool = False
    no_default_ipalloc: bool = False
    no_rewrite_hosts: bool = False
    without_dns: bool = False
    no_multicast_route: bool = False

    # Docker (weavenet.plugin): None = $DOCKER_HOST or the default socket, "" = no Docker
    docker_api: str | None = None
    plugin: bool = False
    plugin_mesh_socket: str = "/run/docker/plugins/weavemesh.sock"


PROXY_FLAGS = [
    click.option("--proxy/--no-proxy", default=False, help="run the Docker API proxy"),
    click.option(
        "-H",
        "proxy_hosts",
        multiple=True,
        metavar="ADDR",
        help="proxy listen address (repeatable); default unix:///var/run/weave/weave.sock",
    ),
    click.option("--hostname-from-label", default="", help="proxy: label giving the hostname"),
    click.option("--hostname-match", default="(.*)", show_default=True, help="proxy: regexp"),
    click.option("--hostname-replacement", default="$1", show_default=True, help="proxy"),
    click.option("--rewrite-inspect", is_flag=True, help="proxy: weave address in inspect"),
    click.option(
        "--no-default-ipalloc", is_flag=True, help="proxy: attach only containers with WEAVE_CIDR"
    ),
    click.option("--no-rewrite-hosts", is_flag=True, help="proxy: leave /etc/hosts alone"),
    click.option("--without-dns", is_flag=True, help="proxy: do not point containers at DNS"),
    click.option("--no-multicast-route", is_flag=True, help="proxy: no 224.0.0.0/4 route"),
]

BOOL_FLAGS = ("--proxy",)  # also given as --proxy=true|false, as Weave's flags parse them


def expand_bool_flags(args: list[str]) -> list[str]:
    """``--proxy=false`` -> ``--no-proxy``, ``--proxy=true`` -> ``--proxy``."""
    out = []
    for arg in args:
        name, eq, value = arg.partition("=")
        if eq and name in BOOL_FLAGS and value.lower() in ("true", "false", "1", "0", "t", "f"):
            arg = name if value.lower() in ("true", "1", "t") else "--no-" + name[2:]
        out.append(arg)
    return out


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
        "--cni-runtime",
        "cni_runtimes",
        multiple=True,
        help="where the CNI GC sees live containers: containerd[:SOCKET[:NAMESPACE]] or"
        " podman[:PATH] (repeatable; none: the GC frees nothing)",
    ),
    click.option(
        "--cni-gc-period",
        default=30.0,
        type=click.FloatRange(0),
        show_default=True,
        help="seconds between missed-DEL collections of CNI containers; 0: off",
    ),
    click.option(
        "--cni-gc-min-age",
        default=30.0,
        type=click.FloatRange(0),
        show_default=True,
        help="a CNI container younger than this is never collected",
    ),
    *PROXY_FLAGS,
    click.option(
        "--docker-api",
        envvar="DOCKER_HOST",
        default=None,
        help="the Docker daemon (unix:// or tcp://); default $DOCKER_HOST, else "
        "unix:///var/run/docker.sock; '' turns the Docker integration off",
    ),
    click.option("--plugin", is_flag=True, help="serve the Docker network plugin weavemesh"),
    click.option(
        "--plugin-mesh-socket",
        default="/run/docker/plugins/weavemesh.sock",
        show_default=True,
        help="socket of the weavemesh network and IPAM plugin",
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
