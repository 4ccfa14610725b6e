"""The Docker part of `make demo` (run when a Docker daemon can be started here).

Two hosts, each with its own dockerd (weavenet.harness.docker); `weave launch` on each
starts the router with the weavemesh plugin and creates the Docker network `weave`.
`docker run --net=weave` on each host; the containers ping each other by address, and by
name through WeaveDNS (the second container is given the router's DNS listener with
`--dns`). Then web1 is restarted with `docker restart`: same address, same name.
"""

from __future__ import annotations

import sys

from weavenet.harness import CommandError, wait_for_mesh, wait_until
from weavenet.harness.docker import BUSYBOX_IMAGE, DockerCluster, DockerHost

DNS_QUERY = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen('http://127.0.0.1:6784/dns-address?ip=' + sys.argv[1])"
    ".read().decode())\n"
)


def say(text: str = "") -> None:
    print(text, flush=True)


def weave_ip(dh: DockerHost, name: str) -> str:
    def found() -> str:
        out = dh.docker("exec", name, "ip", "-o", "-4", "addr", "show", "ethwe0").stdout
        return out.split()[3].split("/")[0] if out.split() else ""

    return wait_until(found, 15, 0.2, f"{name} got no weave address")


def ping(dh: DockerHost, name: str, target: str) -> None:
    argv = ("exec", name, "ping", "-c", "1", "-W", "1", target)
    wait_until(
        lambda: dh.docker(*argv, check=False, timeout=20).returncode == 0,
        20,
        0.2,
        f"{name} cannot ping {target}",
    )
    say(f"  {dh.name}/{name} -> {target}: ok")


def run(cluster: DockerCluster) -> None:
    d1, d2 = cluster.docker_hosts
    d1.launch()
    d2.launch(d1.ip)
    wait_for_mesh(cluster.hosts, timeout=60)
    say("routers up on h1 and h2; `docker network ls` on h1:")
    say(d1.docker("network", "ls", "--filter", "driver=weavemesh").stdout.rstrip())
    d1.docker("run", "-d", "--net=weave", "--name", "web1", BUSYBOX_IMAGE, "sleep", "3600")
    ip1 = weave_ip(d1, "web1")
    dns = d1.run_in_host([sys.executable, "-c", DNS_QUERY, ip1]).stdout.strip()
    say(f"web1 on h1: {ip1}; WeaveDNS answers on {dns}")
    d2.docker("run", "-d", "--net=weave", "--name", "web2", "--dns", dns, "--dns-search",
              "weave.local", BUSYBOX_IMAGE, "sleep", "3600")  # fmt: skip
    ip2 = weave_ip(d2, "web2")
    say(f"web2 on h2: {ip2}")
    ping(d1, "web1", ip2)
    ping(d2, "web2", "web1")
    d1.docker("restart", "-t", "1", "web1")
    again = wait_until(lambda: weave_ip(d1, "web1") == ip1 and ip1, 15, 0.2,
                       "web1 lost its address after docker restart")  # fmt: skip
    say(f"after docker restart web1 still has {again}")
    ping(d2, "web2", "web1")


def docker_demo() -> None:
    """Raises CommandError/TimeoutError on failure (the caller reports it)."""
    with DockerCluster(2) as cluster:
        say(f"built 2 Docker hosts (netns {cluster.prefix}-h1, -h2), a dockerd on each")
        try:
            run(cluster)
        except (CommandError, TimeoutError):
            for host in cluster.hosts:
                say(f"--- {host.name} weaver.log (tail) ---")
                say("\n".join(host.log().splitlines()[-15:]))
            raise
