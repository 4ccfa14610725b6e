"""`weave launch` before it spawns the router: its help, the peer addresses, the IP
allocation range (as Weave's script checks them)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import TextIO

from weavenet.cli.launcher import LaunchError, router_command

DEFAULT_IPALLOC_RANGE = "10.32.0.0/12"
LAUNCH_USAGE = """\
Usage:
weave launch        [--password <pass>] [--trusted-subnets <cidr>,...]
                    [--host <ip_address>] [--name <mac>] [--nickname <nickname>]
                    [--no-restart] [--resume] [--no-discovery] [--ipalloc-init <mode>]
                    [--ipalloc-range <cidr> [--ipalloc-default-subnet <cidr>]]
                    [--conn-limit <n>] [--no-bridge] [--no-dns] [--proxy=false] [-H <endpoint>]
                    [--no-rewrite-hosts] [--no-default-ipalloc] [--rewrite-inspect]
                    [--hostname-from-label <labelkey>] [--hostname-match <regexp>]
                    [--hostname-replacement <replacement>] [--without-dns]
                    [--dns-listen-address <address>:<port>] [--dns-domain <domain>]
                    [--dns-ttl <seconds>] [--dns-all-answers] [--resolv-conf <file>]
                    [--log-level=debug|info|warning|error] <peer> ...

  <peer> = <ip_address_or_fqdn>[:<port>]
  <mode> = consensus[=<count>] | seed=<mac>,... | observer
  <endpoint> = [tcp://][<ip_address>]:<port> | [unix://]/path/to/socket
  --ipalloc-range defaults to 10.32.0.0/12; --ipalloc-range '' disables IP allocation.
  --no-bridge runs a control-plane-only router (no weave bridge, no data plane).

Router flags (weaver --help), all accepted by weave launch:
"""


def launch_help() -> str:
    """Weave's launch usage plus every router flag, from the router itself."""
    proc = subprocess.run(
        [*router_command(), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    return LAUNCH_USAGE + proc.stdout


def peer_args(args: Sequence[str]) -> list[str]:
    """The peers among the router arguments (its positional arguments)."""
    from weavenet.daemon import weaver
    from weavenet.options import expand_bool_flags

    ctx = weaver.make_context(
        "weaver", expand_bool_flags(list(args)), resilient_parsing=True, ignore_unknown_options=True
    )
    return [p for p in ctx.params.get("peers") or () if not p.startswith("-")]


def check_peers(args: Sequence[str], port: int = 6783) -> None:
    """Refuse a bad peer address before spawning, with the text `weave connect` gives."""
    from weavenet.core.mesh.addresses import split_host_port

    for peer in peer_args(args):
        try:
            split_host_port(peer, port)
        except ValueError as exc:
            raise LaunchError(str(exc)) from None


def _overlap(cidr: str) -> bool:
    import ipaddress

    from weavenet.dataplane.proc_route import overlapping_main_route

    net = ipaddress.IPv4Network(cidr, strict=False)
    return overlapping_main_route(net, ignore=("weave",)) is not None


def ipalloc_args(given: str | None, progress: TextIO) -> list[str]:
    """The --ipalloc-range to pass to the router, as Weave's launch checks it: the default
    must not overlap a host route (ignoring the weave bridge's own), a range the user
    chose only warns; an empty value disables IP allocation."""
    if given is None:
        if _overlap(DEFAULT_IPALLOC_RANGE):
            raise LaunchError(
                f"ERROR: Default --ipalloc-range {DEFAULT_IPALLOC_RANGE} overlaps with existing"
                " route on host.\nYou must pick another range and set it on all hosts."
            )
        return ["--ipalloc-range", DEFAULT_IPALLOC_RANGE]
    if given:
        try:
            overlaps = _overlap(given)
        except ValueError as exc:
            raise LaunchError(f"invalid --ipalloc-range {given!r}: {exc}") from None
        if overlaps:
            progress.write(
                f"WARNING: Specified --ipalloc-range {given} overlaps with existing route"
                " on host.\n"
                "Unless this is deliberate, you must pick another range and set it on all hosts.\n"
            )
    return [f"--ipalloc-range={given}"]
