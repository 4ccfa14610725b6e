"""The proxy's decisions, as pure functions of Docker's JSON (Weave's proxy/*.go rules).

Which requests are intercepted, whether a container is ours (its network mode and
WEAVE_CIDR), how a create request is rewritten (the wait program as entrypoint, the
hostname from the name, the DNS server and search domain), the /etc/hosts Weave writes,
and the weave address shown by ``docker inspect --rewrite-inspect``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from enum import Enum
from typing import Any

import msgspec

from weavenet.cli.ipam_client import AddressArg, ArgumentError, parse_addresses

WAIT_ENTRYPOINT = "/w/w"  # the wait program, where the container sees it
WAIT_TARGET = "/w"
MAX_DOCKER_HOSTNAME = 64
NO_COMMAND = "No command specified"
Cidr = ipaddress.IPv4Interface
Json = dict[str, Any]


class Endpoint(Enum):
    CREATE = "create"
    START = "start"  # start and restart
    INSPECT = "inspect"
    DELETE = "delete"


_API = r"^(/v[0-9.]*)?"
_ENDPOINTS = (
    ("POST", re.compile(_API + r"/containers/create$"), Endpoint.CREATE),
    ("POST", re.compile(_API + r"/containers/[^/]*/(re)?start$"), Endpoint.START),
    ("GET", re.compile(_API + r"/containers/[^/]*/json$"), Endpoint.INSPECT),
    ("DELETE", re.compile(_API + r"/containers/[^/]+$"), Endpoint.DELETE),
)
_CONTAINER_IN_PATH = re.compile(_API + r"/containers/([^/]*)")


def classify(method: str, path: str) -> Endpoint | None:
    """The endpoint a request is for, or None to pass it through untouched."""
    for want, pattern, endpoint in _ENDPOINTS:
        if method == want and pattern.match(path):
            return endpoint
    return None


def container_in_path(path: str) -> str:
    match = _CONTAINER_IN_PATH.match(path)
    return match.group(2) if match else ""


class RuleError(Exception):
    """A request we refuse: the message goes to Docker's client ("Error response from
    daemon: ..."); ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ProxySettings(msgspec.Struct, frozen=True):
    wait_volume: str  # host directory holding the wait program, mounted at /w
    dns_domain: str = "weave.local."
    hostname_from_label: str = ""
    hostname_match: str = "(.*)"
    hostname_replacement: str = "$1"
    no_default_ipalloc: bool = False
    without_dns: bool = False
    no_rewrite_hosts: bool = False
    rewrite_inspect: bool = False
    no_multicast_route: bool = False

    @property
    def domain(self) -> str:
        """The domain without its final dot, as it goes into Domainname."""
        return self.dns_domain.rstrip(".")


class Skip(msgspec.Struct, frozen=True):
    """The container is left alone; `reason` is logged (Weave's wording)."""

    reason: str


# --- is the container ours, and with which addresses -----------------------------------------


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{what} must be a list of strings")
    return value


def weave_cidrs(
    network_mode: str | None, env: Sequence[str], no_default_ipalloc: bool
) -> list[AddressArg] | Skip:
    """The container's WEAVE_CIDR addresses ([] = the default subnet), or Skip.
    RuleError for a malformed WEAVE_CIDR."""
    mode = network_mode or ""
    if mode not in ("", "none", "default", "bridge"):  # host, container:..., a plugin network
        return Skip(f"the container has '--net={mode}'")
    for entry in env:
        if entry.startswith("WEAVE_CIDR="):
            value = entry.removeprefix("WEAVE_CIDR=")
            if value == "none":
                return Skip("the container was created with the '-e WEAVE_CIDR=none' option")
            try:
                return parse_addresses(value.split())
            except ArgumentError as exc:
                raise RuleError(f"invalid WEAVE_CIDR {value!r}: {exc}") from None
    if no_default_ipalloc:
        return Skip(
            "the container was created without specifying an IP address with "
            "'-e WEAVE_CIDR=...' and the proxy was started with the '--no-default-ipalloc' option"
        )
    return []


def container_cidrs(info: Json, no_default_ipalloc: bool) -> list[AddressArg] | Skip:
    """weave_cidrs of an inspected container; Skip unless it was created through us."""
    config = info.get("Config") or {}
    entrypoint = config.get("Entrypoint") or []
    if not entrypoint or entrypoint[0] != WAIT_ENTRYPOINT:
        return Skip("it was not created through the proxy")
    mode = (info.get("HostConfig") or {}).get("NetworkMode")
    try:
        return weave_cidrs(mode, _strings(config.get("Env"), "Env"), no_default_ipalloc)
    except RuleError as exc:
        return Skip(str(exc))


# --- hostnames ---------------------------------------------------------------------------------

_TEMPLATE = re.compile(r"\$(?:(\$)|\{(\w+)\}|(\w+))")


def _expand(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand: $1, ${1}, $name, ${name}, $$; unknown groups expand to ""."""

    def one(ref: re.Match[str]) -> str:
        if ref.group(1):
            return "$"
        name = ref.group(2) or ref.group(3)
        index = int(name) if name.isdigit() else match.re.groupindex.get(name)
        if index is None or index > match.re.groups:
            return ""
        return match.group(index) or ""

    return _TEMPLATE.sub(one, template)


def go_replace_all(pattern: re.Pattern[str], template: str, text: str) -> str:
    """Go's Regexp.ReplaceAllString: an empty match right after a match is not replaced."""
    out: list[str] = []
    last_end = 0
    for match in pattern.finditer(text):
        out.append(text[last_end : match.start()])
        if match.end() > last_end or match.start() == 0:
            out.append(_expand(template, match))
        last_end = match.end()
    out.append(text[last_end:])
    return "".join(out)


def container_hostname(name: str, labels: Any, settings: ProxySettings) -> str:
    """The hostname from ``--name`` (or the ``--hostname-from-label`` label), rewritten
    with ``--hostname-match`` / ``--hostname-replacement``."""
    if settings.hostname_from_label:
        if labels is not None and not isinstance(labels, dict):
            raise RuleError("Labels must be an object")
        label = (labels or {}).get(settings.hostname_from_label) or ""
        if not isinstance(label, str):
            raise RuleError(f"label {settings.hostname_from_label} must be a string")
        name = label or name
    try:
        pattern = re.compile(settings.hostname_match)
    except re.error as exc:
        raise RuleError(f"Incorrect hostname match '{settings.hostname_match}': {exc}") from None
    return go_replace_all(pattern, settings.hostname_replacement, name)


# --- the create rewrite ------------------------------------------------------------------------


def needs_image(body: Json) -> bool:
    """True if the image's entrypoint and command are needed (no Entrypoint given)."""
    return not _strings(body.get("Entrypoint"), "Entrypoint")


def _set_entrypoint(body: Json, image_config: Json | None) -> None:
    entrypoint = _strings(body.get("Entrypoint"), "Entrypoint")
    cmd = _strings(body.get("Cmd"), "Cmd")
    if not entrypoint and image_config is not None:
        if not cmd:
            cmd = _strings(image_config.get("Cmd"), "image Cmd")
            body["Cmd"] = cmd
        if body.get("Entrypoint") is None:
            entrypoint = _strings(image_config.get("Entrypoint"), "image Entrypoint")
    if not entrypoint and not cmd:
        raise RuleError(NO_COMMAND)
    if not entrypoint or entrypoint[0] != WAIT_ENTRYPOINT:
        entrypoint = [WAIT_ENTRYPOINT, *entrypoint]
    body["Entrypoint"] = entrypoint


def add_volume(host_config: Json, source: str, target: str, mode: str) -> None:
    binds = [
        b
        for b in _strings(host_config.get("Binds"), "HostConfig.Binds")
        if len(b.split(":")) < 2 or b.split(":")[1] != target
    ]
    host_config["Binds"] = [*binds, f"{source}:{target}:{mode}" if mode else f"{source}:{target}"]


def _set_hostname(body: Json, hostname: str, settings: ProxySettings) -> None:
    if body.get("Hostname") or not hostname:
        return
    if len(hostname) + 1 + len(settings.domain) > MAX_DOCKER_HOSTNAME:
        return  # too long to be a hostname (Weave logs a warning)
    body["Hostname"] = hostname
    body["Domainname"] = settings.domain


def _set_dns(host_config: Json, servers: Sequence[str], settings: ProxySettings) -> None:
    host_config["Dns"] = [*_strings(host_config.get("Dns"), "HostConfig.Dns"), *servers]
    if not _strings(host_config.get("DnsSearch"), "HostConfig.DnsSearch"):
        host_config["DnsSearch"] = [settings.domain]


def rewrite_create(
    body: Json,
    hostname: str,
    image_config: Json | None,
    dns_servers: Sequence[str],
    settings: ProxySettings,
) -> Json:
    """The create request Docker gets for a container of ours (a new dict)."""
    body = dict(body)
    host_config = dict(body.get("HostConfig") or {})
    add_volume(host_config, settings.wait_volume, WAIT_TARGET, "ro")
    _set_entrypoint(body, image_config)
    if not settings.without_dns:
        _set_hostname(body, hostname, settings)
        _set_dns(host_config, dns_servers, settings)
    body["HostConfig"] = host_config
    return body


def create_decision(body: Any, no_default_ipalloc: bool) -> list[AddressArg] | Skip:
    """weave_cidrs of a create request body (RuleError if it is not a JSON object)."""
    if not isinstance(body, dict):
        raise RuleError("the container configuration must be a JSON object")
    host_config = body.get("HostConfig") or {}
    if not isinstance(host_config, dict):
        raise RuleError("HostConfig must be an object")
    mode = host_config.get("NetworkMode")
    if mode is not None and not isinstance(mode, str):
        raise RuleError("HostConfig.NetworkMode must be a string")
    return weave_cidrs(mode, _strings(body.get("Env"), "Env"), no_default_ipalloc)


# --- after start ---------------------------------------------------------------------------------


def fqdn(info: Json) -> str:
    config = info.get("Config") or {}
    return f"{config.get('Hostname') or ''}.{config.get('Domainname') or ''}"


def hosts_content(name: str, cidrs: Sequence[Cidr], extra_hosts: Sequence[str]) -> str:
    """Weave's /etc/hosts (proxy/hosts.go writeEtcHostsContents); `name` is
    ``hostname.domain`` (the domain may be empty)."""
    index = name.index(".")
    short = name[:index]
    hostnames = short if index == len(name) - 1 else f"{name.rstrip('.')} {short}"
    lines = ["# created by Weave - BEGIN", "# container hostname"]
    lines += [f"{cidr.ip!s:<15} {hostnames}" for cidr in cidrs]
    lines += ["", "# static names added with --add-host"]
    for extra in extra_hosts:
        host, sep, ip = extra.partition(":")
        if sep:
            lines.append(f"{ip:<15} {host}")
    lines += [
        "",
        "# default localhost entries",
        "127.0.0.1       localhost",
        "::1             ip6-localhost ip6-loopback",
        "fe00::0         ip6-localnet",
        "ff00::0         ip6-mcastprefix",
        "ff02::1         ip6-allnodes",
        "ff02::2         ip6-allrouters",
        "# created by Weave - END",
    ]
    return "\n".join(lines) + "\n"


def rewrite_inspect(info: Json, cidrs: Sequence[Cidr], mac: str | None) -> Json:
    """``docker inspect`` showing the weave address (``--rewrite-inspect``)."""
    if not cidrs:
        return info
    info = dict(info)
    settings = dict(info.get("NetworkSettings") or {})
    settings["IPAddress"] = str(cidrs[0].ip)
    settings["IPPrefixLen"] = cidrs[0].network.prefixlen
    if mac:
        settings["MacAddress"] = mac
    info["NetworkSettings"] = settings
    return info
