"""Observe an attachment in the kernel, and apply the planner's kernel actions.

`observe` reports facts only (is the container's namespace there, which one, what is on
its ethwe); `weavenet.core.attachments.plan` decides. `apply` is idempotent: every kernel
action is "make ethwe look like the attachment", which `attach()` already does without
failing on what is already there (EEXIST) or already gone (ENOENT).
"""

from __future__ import annotations

import errno
import os

from weavenet.core.attachments import (
    Attachment,
    ContainerState,
    CreateInterface,
    KernelAction,
    Kind,
    Observation,
)
from weavenet.dataplane.attach import attach, link_state
from weavenet.dataplane.bridge import DEFAULT_BRIDGE
from weavenet.dataplane.containers import ContainerRef, docker_inspect
from weavenet.dataplane.netlink import DataplaneError


def netns_identity(path: str) -> str | None:
    """``dev:ino`` of a namespace file, None if there is no such file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


Located = tuple[ContainerState, str | None]  # the container's state and namespace path


def _docker_namespace(att: Attachment, docker_host: str | None) -> Located:
    try:
        info = docker_inspect(att.ident, docker_host)
    except DataplaneError as exc:
        gone = exc.errno == errno.ENOENT
        return (ContainerState.REMOVED if gone else ContainerState.UNKNOWN), None
    state = info.get("State") or {}
    pid = int(state.get("Pid") or 0)
    if not state.get("Running") or pid <= 0:
        return ContainerState.STOPPED, None
    return ContainerState.RUNNING, f"/proc/{pid}/ns/net"


def _namespace(att: Attachment, docker_host: str | None) -> Located:
    if att.kind is Kind.DOCKER:
        return _docker_namespace(att, docker_host)
    return ContainerState.RUNNING, att.netns_path


def observe(
    att: Attachment,
    bridge: str = DEFAULT_BRIDGE,
    netns: str | None = None,
    docker_host: str | None = None,
) -> Observation:
    """What the kernel (and Docker) say about `att` now."""
    state, path = _namespace(att, docker_host)
    if state is not ContainerState.RUNNING or path is None:
        return Observation(state)
    netns_id = netns_identity(path)
    if netns_id is None:
        gone = att.kind is not Kind.DOCKER  # Docker: it stopped between inspect and stat
        return Observation(ContainerState.REMOVED if gone else ContainerState.UNKNOWN)
    try:
        link = link_state(ContainerRef(att.ident, path), bridge, netns)
    except DataplaneError as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH):  # vanished while we looked
            return Observation(ContainerState.UNKNOWN)
        raise
    return Observation(ContainerState.RUNNING, path, netns_id, link)


def apply(action: KernelAction, bridge: str = DEFAULT_BRIDGE, netns: str | None = None) -> str:
    """Make ethwe match the action's attachment; returns ethwe's MAC."""
    att = action.attachment
    ref = ContainerRef(att.ident, att.netns_path)
    mac = att.mac if isinstance(action, CreateInterface) else None
    result = attach(ref, att.cidrs, bridge, att.multicast_route, mac=mac, netns=netns)
    return result.mac
