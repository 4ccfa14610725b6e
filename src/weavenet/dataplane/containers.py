"""Which network namespace a `weave attach` target names.

netns:NAME      /run/netns/NAME            (ident "netns:NAME")
netns:/path     that namespace file        (ident "netns:/path")
pid:PID         /proc/PID/ns/net           (ident "pid:PID")
anything else   a Docker container id or name, looked up over the Docker API
                (DOCKER_HOST unix:// or tcp://, else /var/run/docker.sock);
                ident = the full container id, namespace = /proc/<State.Pid>/ns/net
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any

from weavenet.dataplane.netlink import (
    DataplaneError,
    check_netns,
    netns_path,
    own_netns_path,
    same_netns,
)

DOCKER_SOCKET = "/var/run/docker.sock"
DOCKER_TIMEOUT = 10.0
HOST_NETNS_MESSAGE = (
    "Container is running in the host network namespace, and therefore cannot be\n"
    "connected to weave - perhaps the container was started with --net=host."
)


@dataclass(frozen=True)
class ContainerRef:
    ident: str
    netns_path: str

    @property
    def short_id(self) -> str:
        """The first 12 characters of the ident, as `weave ps` prints it."""
        return self.ident[:12]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _docker_connection(docker_host: str | None) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the Docker daemon and a description of where it is."""
    host = docker_host or f"unix://{DOCKER_SOCKET}"
    if host.startswith("unix://"):
        path = host[len("unix://") :]
        return _UnixHTTPConnection(path, DOCKER_TIMEOUT), path
    if host.startswith("tcp://"):
        url = urllib.parse.urlsplit(host)
        port = url.port or 2375
        return http.client.HTTPConnection(url.hostname or "", port, timeout=DOCKER_TIMEOUT), host
    raise DataplaneError(f"unsupported DOCKER_HOST {host!r} (use unix:// or tcp://)")


def docker_inspect(name: str, docker_host: str | None = None) -> dict[str, Any]:
    """GET /containers/<name>/json; DataplaneError if no daemon or no such container."""
    docker_host = docker_host if docker_host is not None else os.environ.get("DOCKER_HOST")
    conn, where = _docker_connection(docker_host)
    try:
        conn.request("GET", f"/containers/{urllib.parse.quote(name, safe='')}/json")
        resp = conn.getresponse()
        body = resp.read()
    except OSError as exc:
        raise DataplaneError(
            f"cannot reach the Docker daemon at {where} to look up container {name!r}: {exc}",
            # a missing daemon socket (dockerd restarting) is not a missing container
            errno.EHOSTDOWN if exc.errno == errno.ENOENT else exc.errno,
        ) from exc
    finally:
        conn.close()
    if resp.status == 404:
        raise DataplaneError(f"Error: No such container: {name}", errno.ENOENT)
    if resp.status != 200:
        text = body.decode(errors="replace").strip()
        raise DataplaneError(f"Docker API error looking up {name!r}: {resp.status} {text}")
    data: dict[str, Any] = json.loads(body)
    return data


def _docker_ref(name: str, docker_host: str | None) -> ContainerRef:
    info = docker_inspect(name, docker_host)
    pid = int((info.get("State") or {}).get("Pid") or 0)
    if pid <= 0:
        raise DataplaneError(f"container {name} is not running", errno.ESRCH)
    return ContainerRef(str(info["Id"]), f"/proc/{pid}/ns/net")


def _spec_path(spec: str) -> str | None:
    """The namespace file of a netns:/pid: spec, or None for a Docker name."""
    if spec.startswith("netns:"):
        name = spec[len("netns:") :]
        if not name:
            raise DataplaneError("empty namespace name in 'netns:'", errno.EINVAL)
        return netns_path(name)
    if spec.startswith("pid:"):
        pid = spec[len("pid:") :]
        if not pid.isdigit() or int(pid) <= 0:
            raise DataplaneError(f"bad pid in {spec!r}", errno.EINVAL)
        return f"/proc/{int(pid)}/ns/net"
    return None


def resolve_container(
    spec: str, netns: str | None = None, docker_host: str | None = None
) -> ContainerRef:
    """Resolve `spec` to a ContainerRef; refuse the host's own namespace.

    `netns` is the host namespace (where the bridge lives); None means our own.
    """
    if not spec:
        raise DataplaneError("no container given", errno.EINVAL)
    path = _spec_path(spec)
    ref = ContainerRef(spec, path) if path is not None else _docker_ref(spec, docker_host)
    check_netns(ref.netns_path)
    ensure_not_host(ref, netns)
    return ref


def ensure_not_host(ref: ContainerRef, netns: str | None = None) -> None:
    """Raise the Weave error if `ref` lives in the host namespace `netns` (None: ours)."""
    host = netns_path(netns) or own_netns_path()
    try:
        same = same_netns(ref.netns_path, host)
    except OSError as exc:
        raise DataplaneError(f"network namespace {exc.filename} not found", exc.errno) from exc
    if same:
        raise DataplaneError(HOST_NETNS_MESSAGE, errno.EINVAL)
