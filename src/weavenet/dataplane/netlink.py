"""Netlink plumbing shared by the dataplane: namespaces, errno mapping, "ensure" helpers.

Every public dataplane function takes an optional target namespace: `None` (this process's
own namespace), a name from /run/netns, or a path to a namespace file (/proc/PID/ns/net).
Namespaces are never created here: opening a missing one is a DataplaneError.

pyroute2 calls are synchronous (`IPRoute`); callers in the asyncio daemon run them in a thread.
Errors from the kernel become `DataplaneError` with the errno kept in `.errno`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from weavenet.core.errors import WeaveError
from weavenet.lean_import import lean_package

lean_package("pyroute2")  # see lean_import: half of pyroute2's import time saved
from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

T = TypeVar("T")

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
LINK_GONE = (errno.ENODEV, errno.ENOENT, errno.EADDRNOTAVAIL, errno.ESRCH)


class DataplaneError(WeaveError):
    """The kernel refused a data-plane operation, or its target does not exist."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


def netns_path(netns: str | None) -> str | None:
    """The namespace file for `netns` (a /run/netns name or a path); None stays None."""
    if netns is None:
        return None
    return netns if "/" in netns else f"{NETNS_RUN_DIR}/{netns}"


def own_netns_path() -> str:
    """The network namespace of the calling thread."""
    return "/proc/thread-self/ns/net"


def same_netns(path_a: str, path_b: str) -> bool:
    """True if both namespace files name the same namespace."""
    a, b = os.stat(path_a), os.stat(path_b)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_netns(path: str) -> None:
    """Raise DataplaneError unless `path` is a network namespace file we can open."""
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as exc:
        msg = f"network namespace {path} not found: {exc.strerror}"
        raise DataplaneError(msg, exc.errno) from exc


@contextmanager
def held_netns(path: str) -> Iterator[str]:
    """Hold namespace `path` open; yields a path to the held namespace.

    A container's namespace goes away with its last process, and the process may end
    while we are still configuring it (the proxy's wait program lets the command run as
    soon as ethwe has its address): holding it keeps our last steps (the gratuitous ARP)
    from failing on a namespace that just vanished.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        msg = f"network namespace {path} not found: {exc.strerror}"
        raise DataplaneError(msg, exc.errno) from exc
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def describe(exc: NetlinkError | OSError) -> str:
    code = exc.code if isinstance(exc, NetlinkError) else exc.errno
    return os.strerror(code) if isinstance(code, int) and code > 0 else str(exc)


@contextmanager
def kernel_errors(what: str) -> Iterator[None]:
    """Turn netlink/OS errors raised inside the block into DataplaneError("what: reason")."""
    try:
        yield
    except NetlinkError as exc:
        raise DataplaneError(f"{what}: {describe(exc)}", exc.code) from exc
    except OSError as exc:
        raise DataplaneError(f"{what}: {describe(exc)}", exc.errno) from exc


@contextmanager
def ignoring(*codes: int) -> Iterator[None]:
    """Swallow netlink errors with one of `codes` (e.g. EEXIST on add, ENODEV on delete)."""
    try:
        yield
    except NetlinkError as exc:
        if exc.code not in codes:
            raise


def _netlink_socket_in(path: str) -> int:
    """A NETLINK_ROUTE socket bound to namespace `path`, made on a thread that entered it.

    pyroute2's own `netns=` forks a helper process; in the router that child inherits the
    asyncio signal wake-up fd, and the SIGTERM that ends it reads as our own shutdown."""
    sock = run_in_netns(path, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0))
    return sock.detach()


@contextmanager
def iproute(netns: str | None = None) -> Iterator[Any]:
    """A synchronous IPRoute in namespace `netns` (never created if missing)."""
    path = netns_path(netns)
    if path is not None:
        check_netns(path)
    with kernel_errors(f"netlink in {path or 'own namespace'}"):
        ipr = IPRoute() if path is None else IPRoute(fileno=_netlink_socket_in(path))
    try:
        yield ipr
    finally:
        ipr.close()


def link_index(ipr: Any, ifname: str) -> int | None:
    """The ifindex of `ifname`, or None if there is no such link."""
    found = ipr.link_lookup(ifname=ifname)
    return int(found[0]) if found else None


def link_info(ipr: Any, index: int) -> Any:
    """The RTM_NEWLINK message of link `index`."""
    return ipr.get_links(index)[0]


def find_link(ipr: Any, index: int) -> Any | None:
    """The RTM_NEWLINK message of link `index`, or None if there is no such link."""
    try:
        return ipr.get_links(index)[0]
    except NetlinkError as exc:
        if exc.code in LINK_GONE:
            return None
        raise


def link_kind(msg: Any) -> str | None:
    info = msg.get("IFLA_LINKINFO")
    return None if info is None else info.get("IFLA_INFO_KIND")


def ipv4_addresses(ipr: Any, index: int) -> list[tuple[str, int]]:
    """(address, prefixlen) of every IPv4 address on link `index`, in kernel order."""
    msgs = ipr.get_addr(family=2, index=index)
    return [(m.get("IFA_ADDRESS"), int(m["prefixlen"])) for m in msgs]


_libc: Any = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def run_in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """Call `fn` on a fresh thread that has entered `netns` (None: just call it here).

    Sockets and TAP fds created by `fn` stay bound to that namespace after the thread ends,
    which is how raw sockets and /dev/net/tun handles are made for another namespace.
    """
    path = netns_path(netns)
    if path is None:
        return fn()
    check_netns(path)
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=body, name=f"netns:{path}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def disable_ipv6(ifname: str, netns: str | None = None) -> bool:
    """Turn IPv6 off on `ifname` (sysctl disable_ipv6=1), before it is brought up.

    The weave bridge and its overlay ports carry containers' IPv6 frames either way; it is
    the devices' own IPv6 (a link-local address, its DAD, router solicitations, MLD
    reports) that would be relayed along every broadcast tree for nothing. False when it
    could not be done: no IPv6 in the kernel (nothing to turn off), or /proc/sys read-only
    (a router in an unprivileged container): a cost, not a reason to refuse to start."""
    path = f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"

    def write() -> bool:
        try:
            with open(path, "w", encoding="ascii") as sysctl:
                sysctl.write("1")
        except OSError:
            return False
        return True

    return run_in_netns(netns, write)
