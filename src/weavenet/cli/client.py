"""A small synchronous client for the router's HTTP API (stdlib only).

The address is ``host:port`` or, when it starts with "/", a unix socket path;
by default it comes from ``WEAVE_HTTP_ADDR`` (falling back to 127.0.0.1:6784).
"""

from __future__ import annotations

import http.client
import os
import socket
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

DEFAULT_HTTP_ADDR = "127.0.0.1:6784"

Form = Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]]


class ClientError(Exception):
    """Talking to the router failed; the message says what to do next."""


class RouterNotRunning(ClientError):
    """Nothing is listening on the router's HTTP address."""

    def __init__(self, addr: str) -> None:
        super().__init__(f"weave router is not running at {addr}: start it with 'weave launch'")
        self.addr = addr


def http_addr() -> str:
    """The router's HTTP address from the environment."""
    return os.environ.get("WEAVE_HTTP_ADDR") or DEFAULT_HTTP_ADDR


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def connection(addr: str, timeout: float | None) -> http.client.HTTPConnection:
    """An (unopened) connection to the router at `addr`; `timeout` None waits forever."""
    if addr.startswith("/"):
        return _UnixHTTPConnection(addr, timeout)
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ClientError(f"invalid router address {addr!r}: use host:port or /path/to/socket")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def exchange(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    form: Form | None = None,
    accept_json: bool = False,
) -> tuple[int, str]:
    """Send one request on `conn` and read the answer: (HTTP status, body text).

    Raises :class:`RouterNotRunning` when nothing listens at the address and
    :class:`ClientError` on other transport failures (e.g. a timeout). Closes `conn`.
    """
    target = getattr(conn, "socket_path", None) or f"{conn.host}:{conn.port}"
    headers = {"Connection": "close"}
    if accept_json:
        headers["Accept"] = "application/json"
    body = None
    if form is not None:
        body = urlencode(form, doseq=True)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    except (ConnectionRefusedError, FileNotFoundError) as exc:
        raise RouterNotRunning(target) from exc
    except TimeoutError as exc:
        waited = f" within {conn.timeout:g}s" if conn.timeout else ""
        raise ClientError(f"weave router at {target} did not answer{waited}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ClientError(f"cannot talk to weave router at {target}: {exc}") from exc
    finally:
        conn.close()


def call(
    method: str,
    path: str,
    form: Form | None = None,
    accept_json: bool = False,
    timeout: float = 5.0,
    addr: str | None = None,
) -> tuple[int, str]:
    """Send one request to the router; return (HTTP status, body text) (see `exchange`)."""
    conn = connection(addr or http_addr(), timeout)
    return exchange(conn, method, path, form, accept_json)


def router_answers(addr: str | None = None, timeout: float = 1.0) -> int | None:
    """HTTP status of ``GET /status``, or None if nothing answers."""
    try:
        return call("GET", "/status", timeout=timeout, addr=addr)[0]
    except ClientError:
        return None
