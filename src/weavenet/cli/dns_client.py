"""The CLI's WeaveDNS calls: ``weave dns-*`` (cli.dns_cmds) and ``weave attach|detach``.

As Weave's script: ``dns-add [IP...] CONTAINER [-h FQDN]`` registers under the container's
id (``check-alive``), ``dns-add IP... -h FQDN`` under ``weave:extern``; ``dns-remove``
takes the same forms; ``dns-lookup NAME`` asks our DNS server and prints the addresses
one per line, as ``dig +short`` does. ``weave attach`` of a ``netns:NAME`` container
writes ``/etc/netns/NAME/resolv.conf`` (used by ``ip netns exec``) pointing at the
router's DNS listener in the container's subnet.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import click

from weavenet.cli.client import call
from weavenet.core.errors import WeaveError

EXTERN_IDENT = "weave:extern"
NETNS_ETC = Path("/etc/netns")
MARK = "# written by weave attach: the weave router's DNS server\n"
DISABLED = "WeaveDNS is disabled on this router (launched with --no-dns)"


def domain() -> str | None:
    """The router's DNS domain (``weave.local.``), None when DNS is off."""
    code, body = call("GET", "/domain")
    if code == 404:
        return None
    if code != 200:
        raise WeaveError(body.strip() or f"weave router answered HTTP {code}")
    return body.strip()


def qualify(name: str, dns_domain: str) -> str:
    """``web`` -> ``web.weave.local.``; a dotted name is a full name."""
    bare = name.rstrip(".")
    return f"{bare}." if "." in bare else f"{bare}.{dns_domain.strip('.')}."


def in_domain(name: str, dns_domain: str) -> bool:
    name, dns_domain = name.rstrip(".").lower(), dns_domain.strip(".").lower()
    return name.endswith("." + dns_domain)


def docker_fqdn(spec: str, dns_domain: str) -> str | None:
    """A Docker container's `Hostname.Domainname` when it lies in the domain (as Weave's
    script registers it; `docker run -h web.weave.local` or the proxy set it)."""
    from weavenet.dataplane import DataplaneError, docker_inspect

    try:
        config = docker_inspect(spec).get("Config") or {}
    except DataplaneError:
        return None
    host, domain = str(config.get("Hostname") or ""), str(config.get("Domainname") or "")
    name = f"{host}.{domain}" if host and domain else host
    return name if in_domain(name, dns_domain) else None


def container_fqdn(spec: str, dns_domain: str) -> str | None:
    """A ``pid:PID`` container's hostname, a Docker container's hostname and domain name,
    when it lies in the domain (netns: containers share the host's hostname, so they have
    none of their own)."""
    if not spec.startswith(("pid:", "netns:")):
        return docker_fqdn(spec, dns_domain)
    if not spec.startswith("pid:") or shutil.which("nsenter") is None:
        return None
    proc = subprocess.run(
        ["nsenter", "-t", spec[4:], "-u", "hostname"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    name = proc.stdout.strip()
    return name if proc.returncode == 0 and in_domain(name, dns_domain) else None


def _resolv_conf(spec: str) -> Path | None:
    name = spec.removeprefix("netns:")
    if not spec.startswith("netns:") or "/" in name or name in ("", ".", ".."):
        return None  # only named namespaces have an /etc/netns/NAME that ip netns uses
    return NETNS_ETC / name / "resolv.conf"


def write_resolv_conf(spec: str, container_ip: str, dns_domain: str) -> bool:
    """Point the container's resolver at the router; False if it has no file we can write
    or the router has no listener for it."""
    path = _resolv_conf(spec)
    if path is None:
        return False
    code, body = call("GET", f"/dns-address?ip={container_ip}")
    if code != 200:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    search = dns_domain.rstrip(".")
    path.write_text(f"{MARK}nameserver {body.strip()}\nsearch {search}\n")
    return True


def remove_resolv_conf(spec: str) -> None:
    """Take back what write_resolv_conf wrote (only if it is ours)."""
    path = _resolv_conf(spec)
    if path is None or not path.is_file() or not path.read_text().startswith(MARK):
        return
    path.unlink()
    with contextlib.suppress(OSError):  # the directory holds other files: leave it
        path.parent.rmdir()


def _name_path(ident: str, ip: str | None = None) -> str:
    path = f"/name/{quote(ident, safe=':')}"
    return path if ip is None else f"{path}/{ip}"


def _ok(code: int, body: str) -> None:
    if code == 404:
        raise WeaveError(DISABLED)
    if not 200 <= code < 300:
        raise WeaveError(body.strip() or f"weave router answered HTTP {code}")


def register(ident: str, ips: Sequence[str], fqdn: str, check_alive: bool) -> None:
    form = [("fqdn", fqdn)] + ([("check-alive", "true")] if check_alive else [])
    for ip in ips:
        _ok(*call("PUT", _name_path(ident, ip), form=form))


def unregister(ident: str, ips: Sequence[str], fqdn: str | None) -> None:
    form = [("fqdn", fqdn)] if fqdn else None
    targets: list[str | None] = [*ips] or [None]
    for ip in targets:
        _ok(*call("DELETE", _name_path(ident, ip), form=form))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def split_dns_args(args: Sequence[str]) -> tuple[list[str], str | None]:
    """``[IP...] [CONTAINER]`` -> (IPs, container spec or None)."""
    if not args:
        raise WeaveError("give IP addresses and/or a container")
    *ips, last = args
    container = None if _is_ip(last) else last
    if container is None:
        ips.append(last)
    bad = [ip for ip in ips if not _is_ip(ip)]
    if bad:
        raise WeaveError(f"invalid IP address {bad[0]!r}: give IPv4 addresses, then a container")
    return ips, container


def lookup(name: str, server: str, timeout: float = 5.0) -> list[str]:
    """A records for ``name`` from the DNS server at ``host:port`` (as ``dig +short``)."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rdatatype

    host, _, port = server.rpartition(":")
    query = dns.message.make_query(name if name.endswith(".") else name + ".", "A")
    try:
        answer = dns.query.udp(query, host.strip("[]"), timeout=timeout, port=int(port))
        if answer.flags & dns.flags.TC:
            answer = dns.query.tcp(query, host.strip("[]"), timeout=timeout, port=int(port))
    except dns.exception.Timeout:
        raise WeaveError(f"no answer from the DNS server at {server} within {timeout:g}s") from None
    found = []
    for rrset in answer.answer:
        found += [rr.to_text() for rr in rrset if rr.rdtype == dns.rdatatype.A]
    return found


def dns_server() -> str:
    code, body = call("GET", "/dns-address-port")
    if code == 404 and "no listen address" in body:
        raise WeaveError(body.strip())
    _ok(code, body)
    return body.strip()


def echo_lines(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(line)
