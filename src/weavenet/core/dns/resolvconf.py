"""resolv.conf: parsing, and when to look at the file again (Go nameserver/dns.go upstream).

The shell stats the file at most every CHECK_INTERVAL seconds and rereads it only when
its mtime changed; the listen address of our own server is never an upstream.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import msgspec

CHECK_INTERVAL = 5.0
DEFAULT_PATH = "/etc/resolv.conf"


class ResolvConf(msgspec.Struct, frozen=True):
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1
    timeout: float = 5.0
    attempts: int = 2


def parse_resolv_conf(text: str, exclude: Iterable[str] = ()) -> ResolvConf:
    """Lenient, like glibc: unknown or malformed lines are skipped."""
    excluded = {_normal(a) for a in exclude}
    servers: list[str] = []
    search: tuple[str, ...] = ()
    options: dict[str, str] = {}
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2:
            continue
        keyword, args = words[0], words[1:]
        if keyword == "nameserver":
            server = _normal(args[0])
            if server and server not in excluded and server not in servers:
                servers.append(server)
        elif keyword in ("search", "domain"):
            search = tuple(_dotted(d) for d in args)  # the last of them wins, as in glibc
        elif keyword == "options":
            options.update(_option(a) for a in args)
    return ResolvConf(
        nameservers=tuple(servers),
        search=search,
        ndots=_int(options.get("ndots"), 1, 15),
        timeout=float(_int(options.get("timeout"), 5, 30)),
        attempts=_int(options.get("attempts"), 2, 5),
    )


def _normal(addr: str) -> str:
    """Canonical text of an IP address ('' when it is not one)."""
    try:
        return str(ipaddress.ip_address(addr.split("%", 1)[0]))
    except ValueError:
        return ""


def _dotted(domain: str) -> str:
    return domain if domain.endswith(".") else domain + "."


def _option(arg: str) -> tuple[str, str]:
    name, _, value = arg.partition(":")
    return name, value


def _int(value: str | None, default: int, ceiling: int) -> int:
    if value is None or not value.isdigit():
        return default
    return min(int(value), ceiling)


class ResolvConfWatcher:
    """Decides when the shell stats and rereads resolv.conf; holds the current config."""

    def __init__(self, exclude: Iterable[str] = (), check_interval: float = CHECK_INTERVAL):
        self._exclude = tuple(exclude)
        self._interval = check_interval
        self._last_stat = float("-inf")
        self._mtime: float | None = None
        self.config = ResolvConf()

    def set_exclude(self, exclude: Iterable[str]) -> None:
        """New listen addresses to keep out of the upstreams: the file is reread next time."""
        self._exclude = tuple(exclude)
        self._last_stat = float("-inf")
        self._mtime = None

    def stat_due(self, now: float) -> bool:
        return now - self._last_stat >= self._interval

    def on_stat(self, mtime: float | None, now: float) -> bool:
        """Record a stat (None: the file is missing); True if the file must be reread."""
        self._last_stat = now
        return mtime is not None and mtime != self._mtime

    def on_text(self, text: str, mtime: float) -> None:
        self.config = parse_resolv_conf(text, self._exclude)
        self._mtime = mtime
