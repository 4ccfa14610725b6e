"""One HTTP/1.0 request to the router on a plain socket: the plugin's only transport.

Not ``http.client``: it imports ``email`` and ``ssl``, a third of the plugin's start-up
CPU (``python -X importtime``), and the plugin starts for every ADD and each of the
several DELs a runtime sends per pod. The router (aiohttp) answers an HTTP/1.0 request
with a plain body and closes the connection, so reading to EOF is the whole protocol.
"""

from __future__ import annotations

import socket
from urllib.parse import urlencode

DEFAULT_HTTP_ADDR = "127.0.0.1:6784"
MAX_ANSWER = 16 << 20


class HttpError(Exception):
    """The exchange failed; `timed_out` if the router did not answer in time."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class NotRunning(HttpError):
    """Nothing listens at the router's address."""

    def __init__(self, addr: str) -> None:
        super().__init__(f"weave router is not running at {addr}: start it with 'weave launch'")


def _connect(addr: str, timeout: float) -> socket.socket:
    if addr.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: str | tuple[str, int] = addr
    else:
        host, sep, port = addr.rpartition(":")
        if not sep or not port.isdigit():
            raise HttpError(f"invalid router address {addr!r}: use host:port or /path/to/socket")
        host = host.strip("[]")
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        target = (host, int(port))
    sock.settimeout(timeout)
    try:
        sock.connect(target)
    except BaseException:
        sock.close()
        raise
    return sock


def _request_bytes(method: str, path: str, form: dict[str, str] | None) -> bytes:
    body = urlencode(form).encode() if form is not None else b""
    head = [f"{method} {path} HTTP/1.0", "Host: weave", f"Content-Length: {len(body)}"]
    if form is not None:
        head.append("Content-Type: application/x-www-form-urlencoded")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_ANSWER:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise HttpError(f"the router's answer exceeds {MAX_ANSWER} bytes")


def parse_answer(raw: bytes) -> tuple[int, str]:
    """(status, body text) of a whole HTTP/1.x answer."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
        raise HttpError(f"the router sent no HTTP answer: {raw[:80]!r}")
    if not status_line[1].isdigit():
        raise HttpError(f"the router sent a bad status line: {status_line!r}")
    return int(status_line[1]), body.decode("utf-8", "replace")


def request(
    addr: str, method: str, path: str, timeout: float, form: dict[str, str] | None = None
) -> tuple[int, str]:
    """Send one request to the router at `addr` and read the answer: (status, body)."""
    try:
        with _connect(addr, timeout) as sock:
            sock.sendall(_request_bytes(method, path, form))
            return parse_answer(_read_all(sock))
    except (ConnectionRefusedError, FileNotFoundError):
        raise NotRunning(addr) from None
    except TimeoutError:
        raise HttpError(
            f"weave router at {addr} did not answer within {timeout:g}s", True
        ) from None
    except OSError as exc:
        raise HttpError(f"cannot talk to weave router at {addr}: {exc}") from None
