"""Which network namespace a `weave attach` target names.

netns:NAME      /run/netns/NAME            (ident "netns:NAME")
netns:/path     that namespace file        (ident "netns:/path")
pid:PID         /proc/PID/ns/net           (ident "pid:PID")
anything else   a Docker container id or name, looked up over the Docker API with
                aiodocker (DOCKER_HOST unix:// or tcp://, else /var/run/docker.sock);
                ident = the full container id, namespace = /proc/<State.Pid>/ns/net
"""

from __future__ import annotations

import errno
from typing import Any

import msgspec

from weavenet.dataplane.netlink import (
    DataplaneError,
    check_netns,
    netns_path,
    own_netns_path,
    same_netns,
)

HOST_NETNS_MESSAGE = (
    "Container is running in the host network namespace, and therefore cannot be\n"
    "connected to weave - perhaps the container was started with --net=host."
)


class ContainerRef(msgspec.Struct, frozen=True):
    ident: str
    netns_path: str

    @property
    def short_id(self) -> str:
        """The first 12 characters of the ident, as `weave ps` prints it."""
        return self.ident[:12]


def docker_inspect(name: str, docker_host: str | None = None) -> dict[str, Any]:
    """The container's `docker inspect` (through aiodocker); DataplaneError if no daemon
    answers (errno ECONNREFUSED) or there is no such container (errno ENOENT)."""
    from weavenet.io.docker_api import DockerUnavailable, inspect_container

    try:
        info = inspect_container(name, docker_host)
    except DockerUnavailable as exc:
        raise DataplaneError(f"{exc} (looking up container {name!r})", errno.ECONNREFUSED) from exc
    if info is None:
        raise DataplaneError(f"Error: No such container: {name}", errno.ENOENT)
    return info


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
