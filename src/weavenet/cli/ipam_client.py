"""The CLI side of IPAM: address arguments, and allocation calls that may block.

An allocation blocks while the ring is not ready (Weave's router answers only once it has
an address). We never wait silently: after `FIRST_NOTICE` seconds, and whenever it changes,
stderr shows the router's IPAM status from ``GET /report`` ("Waiting for IP address
allocation: <Status> - <Awaiting>"). With a timeout we give up by closing the connection,
which cancels the request in the router, and exit 1 with one line saying what we waited for.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO
from urllib.parse import quote

import msgspec

from weavenet.cli.client import ClientError, call, connection, exchange, http_addr
from weavenet.core.errors import WeaveError

FIRST_NOTICE = 1.0
POLL_INTERVAL = 1.0
CANCELLED = "cancelled"  # Go's body for a request given up on (check-alive: container died)
CANCELLED_WHY = "is the container still running?"
NET_DISABLED = "IP address allocation must be enabled to use 'net:'"
Cidr = ipaddress.IPv4Interface


class ArgumentError(WeaveError):
    """A command-line argument the user got wrong."""


class IpamWaitTimeout(WeaveError):
    """The allocation did not complete in time; str() is the whole line to print."""


class Subnet(msgspec.Struct, frozen=True):
    """``net:CIDR`` (allocate in that subnet) or ``net:default`` (subnet None)."""

    subnet: ipaddress.IPv4Interface | None


class Claim(msgspec.Struct, frozen=True):
    """``ip:CIDR`` or a bare CIDR: that exact address."""

    cidr: Cidr


AddressArg = Subnet | Claim


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_address_arg(arg: str) -> bool:
    """True if `arg` is meant as an address (``ip:``/``net:`` or IP/prefix), not a container."""
    return arg.startswith(("ip:", "net:")) or ("/" in arg and _is_ip(arg.partition("/")[0]))


def _interface(arg: str, text: str, example: str) -> Cidr:
    if "/" not in text:
        if text != arg or _is_ip(text):
            raise ArgumentError(f"address {arg!r} needs a prefix length, e.g. {example}")
        raise ArgumentError(f"unexpected argument {arg!r}: expected an address like {example}")
    try:
        cidr = ipaddress.ip_interface(text)
    except ValueError:
        raise ArgumentError(f"invalid address {arg!r}: expected e.g. {example}") from None
    if not isinstance(cidr, Cidr):
        raise ArgumentError(f"address {arg!r} is IPv6; only IPv4 addresses are supported")
    return cidr


def parse_address(arg: str, example: str = "10.2.1.1/24") -> AddressArg:
    if arg == "net:default":
        return Subnet(None)
    if arg.startswith("net:"):
        return Subnet(_interface(arg, arg.removeprefix("net:"), "net:10.2.1.0/24"))
    cidr = _interface(arg, arg.removeprefix("ip:"), example)
    net = cidr.network
    if net.prefixlen <= 30 and cidr.ip in (net.network_address, net.broadcast_address):
        kind = "network" if cidr.ip == net.network_address else "broadcast"
        raise ArgumentError(f"{arg} is the {kind} address of {net}; give e.g. {example}")
    return Claim(cidr)


def parse_addresses(args: Sequence[str], example: str = "10.2.1.1/24") -> list[AddressArg]:
    """Parse every arg; drop exact repeats, refuse one IP with two prefixes."""
    parsed: list[AddressArg] = []
    claimed: dict[ipaddress.IPv4Address, Cidr] = {}
    for arg in args:
        addr = parse_address(arg, example)
        if isinstance(addr, Claim):
            if claimed.get(addr.cidr.ip, addr.cidr) != addr.cidr:
                ip = addr.cidr.ip
                raise ArgumentError(f"address {ip} given twice with different prefix lengths")
            claimed[addr.cidr.ip] = addr.cidr
        if addr not in parsed:
            parsed.append(addr)
    return parsed


def ip_path(ident: str, cidr: ipaddress.IPv4Interface | None = None) -> str:
    """/ip/<ident>[/<ip>/<prefixlen>]"""
    path = f"/ip/{quote(ident, safe=':')}"
    return path if cidr is None else f"{path}/{cidr.ip}/{cidr.network.prefixlen}"


# --- waiting ---------------------------------------------------------------------------


def ipam_status() -> str:
    """The router's IPAM "Status - Awaiting" from GET /report (contract C)."""
    try:
        code, body = call("GET", "/report", accept_json=True, timeout=3.0)
        ipam = json.loads(body).get("IPAM") or {} if code == 200 else {}
    except (ClientError, ValueError, AttributeError):
        ipam = {}
    status, awaiting = str(ipam.get("Status") or ""), str(ipam.get("Awaiting") or "")
    if not status:
        return "IPAM status unknown (the router does not report it)"
    return f"{status} - {awaiting}" if awaiting else status


class _Pending:
    """One HTTP request run on a worker thread, so that the caller can watch and cancel it."""

    def __init__(self, method: str, path: str) -> None:
        self._conn = connection(http_addr(), None)
        self._done = threading.Event()
        self._result: tuple[int, str] | None = None
        self._error: ClientError | None = None
        self._thread = threading.Thread(target=self._run, args=(method, path), daemon=True)
        self._thread.start()

    def _run(self, method: str, path: str) -> None:
        try:
            self._result = exchange(self._conn, method, path)
        except ClientError as exc:
            self._error = exc
        finally:
            self._done.set()

    def wait(self, seconds: float) -> bool:
        return self._done.wait(max(seconds, 0.0))

    def result(self) -> tuple[int, str]:
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        """Close the connection: the router sees the client gone and cancels the request."""
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the other side
                sock.shutdown(socket.SHUT_RDWR)
        self._done.wait(2.0)


def wait_for(
    method: str,
    path: str,
    command: str,
    timeout: float | None,
    err: TextIO,
    status: Callable[[], str] = ipam_status,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int, str]:
    """Run a possibly blocking IPAM request, showing why it waits; IpamWaitTimeout after
    `timeout` seconds (None: wait as long as it takes, as Weave does)."""
    pending = _Pending(method, path)
    start = clock()
    shown: str | None = None
    while True:
        elapsed = clock() - start
        step = FIRST_NOTICE - elapsed if shown is None else POLL_INTERVAL
        if timeout is not None:
            step = min(step, timeout - elapsed)
        if pending.wait(step):
            return pending.result()
        if timeout is not None and clock() - start >= timeout:
            text = status()
            pending.cancel()
            raise IpamWaitTimeout(
                f"weave {command}: timed out after {timeout:g}s waiting for an IP address: {text}"
            )
        text = status()
        if text != shown:
            err.write(f"Waiting for IP address allocation: {text}\n")
            err.flush()
            shown = text


# --- the script's ipam_cidrs -----------------------------------------------------------


def _failed(code: int, body: str) -> WeaveError:
    return WeaveError(body.strip() or f"weave router answered HTTP {code}")


def allocate(
    ident: str,
    args: Sequence[AddressArg],
    command: str,
    timeout: float | None,
    err: TextIO,
    check_alive: bool = False,
) -> list[Cidr]:
    """Weave's ``ipam_cidrs allocate``: no address means net:default; ``net:`` allocates
    (POST), an explicit address is claimed (PUT; 404 = IPAM disabled, the address is used
    as given). Returns every address, in order."""
    query = "?check-alive=true" if check_alive else ""
    cidrs: list[Cidr] = []
    for arg in args or [Subnet(None)]:
        if isinstance(arg, Subnet):
            code, body = wait_for("POST", ip_path(ident, arg.subnet) + query, command, timeout, err)
            if code == 404:
                raise ArgumentError(NET_DISABLED)
            if not 200 <= code < 300:
                raise _failed(code, body)
            if body.strip() == CANCELLED:
                raise WeaveError(
                    f"the router cancelled the allocation for {ident}: {CANCELLED_WHY}"
                )
            try:
                cidrs.append(Cidr(body.strip()))
            except ValueError:
                raise WeaveError(f"the router allocated {body.strip()!r}, not an address") from None
        else:
            code, body = wait_for("PUT", ip_path(ident, arg.cidr) + query, command, timeout, err)
            if code != 404 and not 200 <= code < 300:
                raise _failed(code, body)
            cidrs.append(arg.cidr)
    return cidrs


def lookup(ident: str, args: Sequence[AddressArg]) -> list[Cidr]:
    """Weave's ``ipam_cidrs lookup``: explicit addresses as given, ``net:`` asks IPAM."""
    cidrs: list[Cidr] = []
    for arg in args:
        if isinstance(arg, Claim):
            cidrs.append(arg.cidr)
            continue
        code, body = call("GET", ip_path(ident, arg.subnet))
        if code == 404:
            raise ArgumentError(NET_DISABLED)
        if not 200 <= code < 300:
            raise _failed(code, body)
        cidrs += [Cidr(text) for text in body.split()]
    return cidrs


def free(ident: str, cidrs: Sequence[Cidr]) -> None:
    """Hand addresses back to IPAM (``DELETE /ip/<ident>/<ip>``); addresses IPAM does not
    manage (400) or a router without IPAM (404) are fine."""
    for cidr in cidrs:
        call("DELETE", f"{ip_path(ident)}/{cidr.ip}")
