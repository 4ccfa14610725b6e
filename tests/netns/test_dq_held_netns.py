"""A container's namespace held open while we finish configuring it (dataplane.netlink).

The proxy's wait program lets a container's command run as soon as ethwe has its address;
a quick command (`docker run --rm IMAGE true`) then ends while the attachment is still
sending its gratuitous ARP. Holding the namespace keeps those last steps working.
"""

from __future__ import annotations

import os
import subprocess

from weavenet.dataplane.netlink import held_netns, iproute, link_index, run_in_netns
from weavenet.harness import wait_until


def _netns_inode(path: str) -> int:
    return os.stat(path).st_ino


def test_a_held_namespace_outlives_its_last_process() -> None:
    proc = subprocess.Popen(["unshare", "--net", "sleep", "60"], start_new_session=True)
    try:
        path = f"/proc/{proc.pid}/ns/net"
        own = _netns_inode("/proc/self/ns/net")
        wait_until(lambda: os.path.exists(path) and _netns_inode(path) != own, 10, 0.02,
                   "unshare did not make its namespace")  # fmt: skip
        inode = _netns_inode(path)
        with held_netns(path) as held:
            proc.kill()
            proc.wait(timeout=10)
            assert not os.path.exists(path)  # the process is gone, its /proc entry too
            with iproute(held) as ipr:
                assert link_index(ipr, "lo") is not None
            seen = run_in_netns(held, lambda: _netns_inode("/proc/thread-self/ns/net"))
            assert seen == inode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
