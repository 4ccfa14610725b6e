"""``weave dns-add|dns-remove|dns-lookup`` (weave-surface.md §1.3).

``dns-add [IP...] CONTAINER [-h FQDN]``: the names go under the container's id, checked
alive (no IP: the container's weave addresses; no ``-h``: its hostname in the domain);
``dns-add IP... -h FQDN``: under ``weave:extern``. ``dns-remove`` takes the same forms
(without ``-h``: every name of those addresses). ``dns-lookup NAME``: the A records our
DNS server gives, one per line, as ``dig +short``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from weavenet.cli import dns_client as dnsc
from weavenet.cli.dataplane_cmds import dp, reported, router_call
from weavenet.core.errors import WeaveError


def _container_ips(ident: str) -> list[str]:
    snapshot = json.loads(router_call("GET", "/attachments")[1])
    for att in snapshot.get("attachments", []):
        if att["ident"] == ident:
            return [c.split("/")[0] for c in att["cidrs"]]
    raise WeaveError(f"container {ident} is not attached: give its IP addresses")


def _targets(args: Sequence[str], fqdn: str | None) -> tuple[str, list[str], str | None, str]:
    """(ident, IPs, FQDN or None, domain) for the dns-add/dns-remove arguments."""
    dns_domain = dnsc.domain()
    if dns_domain is None:
        raise WeaveError(dnsc.DISABLED)
    ips, spec = dnsc.split_dns_args(args)
    name = dnsc.qualify(fqdn, dns_domain) if fqdn else None
    if spec is None:
        return dnsc.EXTERN_IDENT, ips, name, dns_domain
    ident = dp().resolve_container(spec).ident
    return ident, ips, name or dnsc.container_fqdn(spec, dns_domain), dns_domain


help_fqdn = {"help_option_names": ["--help"]}  # -h is the FQDN, as Weave's


@click.command("dns-add", context_settings=help_fqdn)
@click.option("-h", "fqdn", metavar="FQDN", help="The name (default: the container's hostname).")
@click.argument("args", nargs=-1, metavar="[IP...] [CONTAINER]")
def dns_add(fqdn: str | None, args: Sequence[str]) -> None:
    """Register names: weave dns-add [IP...] CONTAINER [-h FQDN] | IP... -h FQDN."""
    with reported("dns-add"):
        ident, ips, name, dns_domain = _targets(args, fqdn)
        if name is None and ident == dnsc.EXTERN_IDENT:
            raise WeaveError("give -h FQDN for addresses without a container")
        if name is None:
            raise WeaveError("the container has no hostname in the DNS domain: give -h FQDN")
        if not dnsc.in_domain(name, dns_domain):
            raise WeaveError(f"{name} is not in the DNS domain {dns_domain}")
        extern = ident == dnsc.EXTERN_IDENT
        dnsc.register(ident, ips or _container_ips(ident), name, check_alive=not extern)


@click.command("dns-remove", context_settings=help_fqdn)
@click.option("-h", "fqdn", metavar="FQDN", help="Only this name (default: every name).")
@click.argument("args", nargs=-1, metavar="[IP...] [CONTAINER]")
def dns_remove(fqdn: str | None, args: Sequence[str]) -> None:
    """Remove names: weave dns-remove [IP...] CONTAINER [-h FQDN] | IP... [-h FQDN]."""
    with reported("dns-remove"):
        ident, ips, name, _domain = _targets(args, fqdn)
        dnsc.unregister(ident, ips, name if fqdn else None)


@click.command("dns-lookup")
@click.argument("name")
def dns_lookup(name: str) -> None:
    """Resolve a name through the router's DNS server: weave dns-lookup NAME."""
    with reported("dns-lookup"):
        found = dnsc.lookup(name, dnsc.dns_server())
    dnsc.echo_lines(found)


COMMANDS: tuple[click.Command, ...] = (dns_add, dns_remove, dns_lookup)
