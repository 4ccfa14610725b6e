"""`make demo`: three hosts form a Weave mesh, attach containers, resolve names, survive a crash.

h1 is launched alone, h2 is given h1's address, h3 is given h2's address; peer discovery
completes the mesh (h1 <-> h3). Two containers per host are attached with `weave attach`
and no address (IPAM allocates from 10.32.0.0/12 once the three routers agree), they ping
across hosts; every c1 is named `web` and every c2 `<host>-c2` (weave attach --name): names
resolve across hosts with dig through the resolv.conf attach wrote, and `web` is answered
with a different one of the three addresses from query to query. Then h2's router is
killed with SIGKILL and relaunched with `weave launch --resume`: same peer name, same
addresses, same names, the containers still reach each other.
When Docker can run here (docker.io, busybox-static: `make demo` installs them), a second
part runs two hosts with a dockerd each: `docker run --net=weave` (the weavemesh plugin)
on both, pings by address and by name, a `docker restart` keeps the address.
Everything runs in network namespaces and is torn down at the end, also on Ctrl-C. Needs root.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from weavenet.harness import Cluster, CommandError, Container, Host, wait_for_mesh, wait_until
from weavenet.harness.containers import reaches

N_HOSTS = 3
MESH_TIMEOUT = 30.0


class DemoError(Exception):
    """A step failed; the message says which and why."""


def say(text: str = "") -> None:
    print(text, flush=True)


def header(title: str) -> None:
    say()
    say(f"==================== {title} ====================")


def launch_routers(cluster: Cluster) -> None:
    """h1 alone, then each next host pointed at the previous one."""
    previous: Host | None = None
    for host in cluster.hosts:
        peers = [previous.ip] if previous is not None else []
        say(f"launching router on {host.name} ({host.ip}) peers={peers or 'none'}")
        try:
            host.launch(*peers)
        except CommandError as exc:
            raise DemoError(f"weave launch failed on {host.name}:\n{exc}") from exc
        previous = host


def wait_for_full_mesh(cluster: Cluster) -> None:
    """Wait until every host has all peers and an established connection to each."""
    start = time.monotonic()
    interactive = sys.stdout.isatty()

    def progress(lines: list[str]) -> None:
        text = f"[{time.monotonic() - start:4.1f}s] " + " | ".join(lines)
        if interactive:
            print("\r\033[K" + text, end="", flush=True)
        else:
            say(text)

    say(f"waiting (up to {MESH_TIMEOUT:.0f}s) for a full mesh of {N_HOSTS} hosts...")
    try:
        wait_for_mesh(cluster.hosts, timeout=MESH_TIMEOUT, progress=progress)
    except TimeoutError as exc:
        if interactive:
            say()
        raise DemoError(f"the mesh did not form: {exc}") from exc
    if interactive:
        say()
    say(f"full mesh formed in {time.monotonic() - start:.1f}s")


def show_status(cluster: Cluster) -> None:
    for host in cluster.hosts:
        header(f"{host.name} ({host.ip})")
        for sub in ((), ("connections",)):
            say(" ".join(("$ weave status", *sub)))
            try:
                say(host.status(*sub).rstrip("\n"))
            except CommandError as exc:
                raise DemoError(f"weave status failed on {host.name}:\n{exc}") from exc
            say()


def attach_containers(cluster: Cluster) -> list[tuple[Container, str]]:
    """Two containers per host, attached with `weave attach` and no address (IPAM)."""
    header("containers")
    attached = []
    for host in cluster.hosts:
        for c in (1, 2):
            container = host.add_container(f"c{c}")
            name = "web" if c == 1 else f"{host.name}-c{c}"  # every c1 shares the name web
            argv = ["attach", "--name", name, f"netns:{container.netns}"]
            say(f"$ weave {' '.join(argv)}    # on {host.name}")
            try:
                ip = host.weave(*argv, timeout=60).stdout.strip()
            except CommandError as exc:
                raise DemoError(f"weave attach failed on {host.name}:\n{exc}") from exc
            say(ip)
            attached.append((container, ip))
    say()
    say(f"$ weave ps    # on {cluster.hosts[0].name}")
    say(cluster.hosts[0].weave("ps").stdout.rstrip("\n"))
    return attached


def show_cross_host_pings(attached: list[tuple[Container, str]]) -> None:
    """Every container pings one container on each other host, through the sleeve."""
    header("cross-host ping (sleeve overlay)")
    failures = 0
    for container, ip in attached:
        for other, other_ip in attached:
            if other.host is container.host or other.name != "c1":
                continue
            ok = reaches(container, other_ip, timeout=15)
            failures += not ok
            say(
                f"{container.host.name}/{container.name} ({ip}) -> "
                f"{other.host.name}/{other.name} ({other_ip}): {'ok' if ok else 'FAILED'}"
            )
    if failures:
        raise DemoError(f"{failures} cross-host pings failed")


def _dig(container: Container, name: str) -> list[str]:
    argv = ["dig", "+short", "+tries=1", "+time=2", name]
    return container.run(argv, check=False).stdout.split()


def show_dns(cluster: Cluster) -> None:
    """Names registered on one host resolve on the others; a shared name is balanced."""
    header("WeaveDNS: names across hosts, one name shared by three containers")
    client = cluster.hosts[0].containers["c2"]
    for host in cluster.hosts[1:]:
        name = f"{host.name}-c2.weave.local"
        found = wait_until(lambda n=name: _dig(client, n), timeout=5, message=f"resolve {name}")
        say(f"$ dig +short {name}    # in h1/c2, via /etc/netns/{client.netns}/resolv.conf")
        say(" ".join(found))
    say("$ for i in $(seq 12); do dig +short web.weave.local; done  # in h1/c2")
    answers = [" ".join(_dig(client, "web.weave.local")) for _ in range(12)]
    say(" ".join(answers))
    counts = {a: answers.count(a) for a in sorted(set(answers))}
    say(f"answers: {counts}")
    say(f"$ weave status dns    # on {cluster.hosts[0].name}")
    say(cluster.hosts[0].status("dns").rstrip("\n"))


def crash_and_resume(cluster: Cluster) -> None:
    """kill -9 h2's router, relaunch it with --resume, show it kept its name and containers."""
    host = cluster.hosts[1]
    header(f"kill -9 the router on {host.name}, then weave launch --resume")
    name = host.report()["Router"]["Name"]
    pid = host.router_pid()
    if pid is None:
        raise DemoError(f"no router running on {host.name}")
    say(f"$ kill -9 {pid}    # on {host.name}")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: host.router_pid() is None, timeout=10, message="router gone")
    say(f"$ weave ps    # on {host.name}, router down: the attachments are persisted")
    say(host.weave("ps").stdout.rstrip("\n"))
    say(f"$ weave launch --resume    # on {host.name}")
    try:
        host.launch("--resume")
    except CommandError as exc:
        raise DemoError(f"weave launch --resume failed on {host.name}:\n{exc}") from exc
    wait_for_full_mesh(cluster)
    again = host.report()["Router"]["Name"]
    say(f"peer name before {name}, after {again}")
    if again != name:
        raise DemoError(f"{host.name} came back as {again}, not {name}")


def show_router_log_tails(cluster: Cluster, lines: int = 15) -> None:
    """On failure: the end of each router's log, to show why."""
    for host in cluster.hosts:
        tail = host.log().splitlines()[-lines:]
        say(f"--- {host.name} weaver.log (last {len(tail)} lines) ---")
        for line in tail:
            say(line)


def run_demo() -> None:
    with Cluster(N_HOSTS) as cluster:
        say(f"built {N_HOSTS} hosts (netns {cluster.prefix}-h1..h{N_HOSTS}) on {cluster.underlay}")
        try:
            launch_routers(cluster)
            wait_for_full_mesh(cluster)
            attached = attach_containers(cluster)
            show_status(cluster)
            show_cross_host_pings(attached)
            show_dns(cluster)
            crash_and_resume(cluster)
            show_cross_host_pings(attached)
            show_dns(cluster)
        except DemoError:
            show_router_log_tails(cluster)
            raise
        finally:  # the resolv.conf files weave attach wrote for our namespaces
            for path in Path("/etc/netns").glob(f"{cluster.prefix}-*"):
                shutil.rmtree(path, ignore_errors=True)
        header("tearing down")


def run_docker_part() -> None:
    """Two Docker hosts and the weavemesh plugin (scripts/demo_docker.py), if Docker runs."""
    from weavenet.harness.docker import docker_unusable_reason

    header("Docker: docker run --net=weave on two hosts")
    reason = docker_unusable_reason()
    if reason is not None:
        say(f"skipped: {reason}")
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from demo_docker import docker_demo

    try:
        docker_demo()
    except (CommandError, TimeoutError) as exc:
        raise DemoError(f"Docker part: {exc}") from exc
    header("tearing down the Docker hosts")


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    if os.geteuid() != 0:
        say("demo: needs root (it creates network namespaces)")
        return 2
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        run_demo()
        run_docker_part()
    except DemoError as exc:
        say(f"demo FAILED: {exc}")
        return 1
    except KeyboardInterrupt:
        say("\ndemo interrupted; everything was torn down")
        return 130
    say("done; everything was torn down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
