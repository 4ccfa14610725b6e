"""Parsing of peer addresses given by users (``host[:port]``) and seen on sockets."""

from __future__ import annotations

import ipaddress
import re

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """Split ``host``, ``host:port``, ``[v6]:port``; raise ValueError saying what is wrong."""
    text = text.strip()
    if not text:
        raise ValueError("empty peer address")
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"invalid peer address {text!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"invalid peer address {text!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    port = default_port
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"invalid port in peer address {text!r}")
        port = int(port_text)
    if not _valid_host(host):
        raise ValueError(f"invalid host in peer address {text!r}")
    return host, port


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    # a name whose last label is all digits is a mistyped IPv4 address (999.1.1.1), not a
    # host name: no top-level domain is numeric (RFC 3696 s2)
    return bool(_HOSTNAME.match(host)) and not host.rstrip(".").rsplit(".", 1)[-1].isdigit()


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def host_of(address: str) -> str:
    """The host part of an ``ip:port`` string as seen on a socket ("" if unparsable)."""
    if address.startswith("["):
        return address[1 : address.find("]")]
    return address.rsplit(":", 1)[0] if ":" in address else address
