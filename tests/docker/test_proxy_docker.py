"""The Docker API proxy with real dockerd and docker processes (issue 9, acceptance 1, 3 for
the proxy way, 4 for the proxy's bad input): `eval $(weave env)` then plain `docker run`."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable

from weavenet.harness import wait_for_mesh, wait_until
from weavenet.harness.docker import BUSYBOX_IMAGE, DOCKER, DockerCluster, DockerHost

PROXY_SOCK = "unix:///var/run/weave/weave.sock"
RANGE = ("--ipalloc-range", "10.2.0.0/16", "--ipalloc-default-subnet", "10.2.1.0/24")
Factory = Callable[..., DockerCluster]


def weave_env(dh: DockerHost) -> dict[str, str]:
    """What `eval $(weave env)` sets, parsed from the command's exact output."""
    out = dh.weave("env").stdout
    assert out == f"export DOCKER_HOST={PROXY_SOCK} ORIG_DOCKER_HOST={dh.docker_host}\n"
    words = out.split()
    assert words[0] == "export"
    return dict(w.split("=", 1) for w in words[1:])


def router_get(dh: DockerHost, path: str, accept: str = "*/*") -> str:
    code = (
        "import sys, urllib.request as u"
        "; r = u.Request(sys.argv[1], headers={'Accept': sys.argv[2]})"
        "; print(u.urlopen(r).read().decode())"
    )
    url = f"http://127.0.0.1:6784{path}"
    return dh.run_in_host([sys.executable, "-c", code, url, accept]).stdout.strip()


def weave_ips(dh: DockerHost, name: str, env: dict[str, str]) -> list[str]:
    """The IPv4 addresses on the container's ethwe ([] if it has none)."""
    proc = dh.docker("exec", name, "ip", "-o", "-4", "addr", "show", "dev", "ethwe", env=env,
                     check=False)  # fmt: skip
    return [w.split("/")[0] for line in proc.stdout.splitlines() for w in line.split()[3:4]]


def resolves(dh: DockerHost, name: str) -> list[str]:
    """The live addresses the router's WeaveDNS has for `name` (its GET /name)."""
    entries = json.loads(router_get(dh, "/name", "application/json")) or []
    fqdn = f"{name}.weave.local."
    live = [e for e in entries if e["Hostname"] == fqdn and not e["Tombstone"]]
    return sorted(str(ipaddress.IPv4Address(e["Addr"])) for e in live)


def test_env_config_and_docker_run_on_two_hosts(docker_cluster: Factory) -> None:
    c = docker_cluster(2, launch_args=RANGE)
    d1, d2 = c.docker_hosts
    env1, env2 = weave_env(d1), weave_env(d2)
    assert env1 == {"DOCKER_HOST": PROXY_SOCK, "ORIG_DOCKER_HOST": d1.docker_host}
    assert d1.weave("config").stdout == f"-H={PROXY_SOCK}\n"
    restored = d1.weave("env", "--restore", env=env1).stdout
    assert restored == f"DOCKER_HOST={d1.docker_host}\n"
    nothing = d1.weave("env", "--restore", check=False)
    assert nothing.returncode == 1 and "Nothing to restore" in nothing.stderr

    # no weave flags at all: an address from IPAM, the name in DNS on the other host
    bee = d2.docker("run", "-d", "--name", "bee", BUSYBOX_IMAGE, "sleep", "600", env=env2)
    bee_id = bee.stdout.strip()
    ips = weave_ips(d2, "bee", env2)
    assert len(ips) == 1 and ips[0].startswith("10.2.1.")
    assert router_get(d2, f"/ip/{bee_id}") == f"{ips[0]}/24"
    wait_until(lambda: resolves(d1, "bee") == ips, 30, 0.2, "bee not known on h1")
    # the container's FIRST command pings the other host's container by name
    ping = d1.docker("run", "--rm", "--name", "ant", BUSYBOX_IMAGE,
                     "ping", "-c", "1", "-w", "5", "bee", env=env1, check=False)  # fmt: skip
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert f"({ips[0]})" in ping.stdout

    # WEAVE_CIDR: net: and ip: honoured, none leaves the container alone
    d1.docker("run", "-d", "--name", "netc", "-e", "WEAVE_CIDR=net:10.2.5.0/24",
              BUSYBOX_IMAGE, "sleep", "600", env=env1)  # fmt: skip
    assert weave_ips(d1, "netc", env1)[0].startswith("10.2.5.")
    d1.docker("run", "-d", "--name", "ipc", "-e", "WEAVE_CIDR=ip:10.2.5.77/24",
              BUSYBOX_IMAGE, "sleep", "600", env=env1)  # fmt: skip
    assert weave_ips(d1, "ipc", env1) == ["10.2.5.77"]
    d1.docker("run", "-d", "--name", "nonec", "-e", "WEAVE_CIDR=none",
              BUSYBOX_IMAGE, "sleep", "600", env=env1)  # fmt: skip
    links = d1.docker("exec", "nonec", "ip", "-o", "link", env=env1).stdout
    assert "ethwe" not in links
    assert d1.inspect("nonec")["Config"]["Entrypoint"] is None  # not rewritten at all

    # bad input: a malformed WEAVE_CIDR is refused with the reason, nothing left behind
    bad = d1.docker("run", "-d", "--name", "badc", "-e", "WEAVE_CIDR=net:10.2.5",
                    BUSYBOX_IMAGE, "true", env=env1, check=False)  # fmt: skip
    assert bad.returncode != 0
    assert "invalid WEAVE_CIDR 'net:10.2.5'" in bad.stderr
    assert d1.docker("ps", "-aq", "--filter", "name=badc").stdout.strip() == ""


def test_streams_through_the_proxy(docker_cluster: Factory) -> None:
    c = docker_cluster(1, launch_args=RANGE)
    (d1,) = c.docker_hosts
    env = weave_env(d1)
    d1.docker("run", "-d", "--name", "box", BUSYBOX_IMAGE, "sleep", "600", env=env)

    # docker logs -f follows until the container ends
    d1.docker("run", "-d", "--name", "talker", BUSYBOX_IMAGE,
              "sh", "-c", "echo one; sleep 2; echo two", env=env)  # fmt: skip
    assert d1.docker("logs", "-f", "talker", env=env).stdout == "one\ntwo\n"
    # docker attach (a hijacked connection) gets the output as it comes
    d1.docker("run", "-d", "--name", "later", BUSYBOX_IMAGE,
              "sh", "-c", "sleep 2; echo attached-ok", env=env)  # fmt: skip
    assert d1.docker("attach", "later", env=env).stdout == "attached-ok\n"
    # stdin through an attached run and an exec
    text = "hello through the proxy\n" * 100
    assert d1.docker("run", "-i", "--rm", BUSYBOX_IMAGE, "cat", env=env, input=text).stdout == text
    assert d1.docker("exec", "-i", "box", "cat", env=env, input=text).stdout == text
    assert d1.docker("exec", "box", "hostname", env=env).stdout == "box\n"

    # a 20 MB docker cp, both ways, intact
    big = d1.dir / "big.bin"
    data = os.urandom(20 * 1024 * 1024)
    big.write_bytes(data)
    d1.docker("cp", str(big), "box:/tmp/big.bin", env=env, timeout=120)
    md5 = d1.docker("exec", "box", "md5sum", "/tmp/big.bin", env=env).stdout.split()[0]
    assert md5 == hashlib.md5(data).hexdigest()
    back = d1.dir / "back"
    back.mkdir()
    d1.docker("cp", "box:/tmp/big.bin", str(back), env=env, timeout=120)
    assert (back / "big.bin").read_bytes() == data

    # a client that disconnects mid-stream does not hurt the proxy
    d1.docker("run", "-d", "--name", "chatty", BUSYBOX_IMAGE,
              "sh", "-c", "while true; do echo tick; usleep 20000; done", env=env)  # fmt: skip
    follower = d1.popen([DOCKER, "logs", "-f", "chatty"], env={**d1.env, **env},
                        stdout=subprocess.PIPE)  # fmt: skip
    assert follower.stdout is not None
    assert follower.stdout.readline() == b"tick\n"
    follower.send_signal(signal.SIGKILL)
    follower.wait(timeout=10)
    assert d1.docker("exec", "box", "echo", "still-fine", env=env).stdout == "still-fine\n"
    assert d1.router_pid() is not None


def _reachable(dh: DockerHost, env: dict[str, str], src: str, name: str) -> bool:
    argv = ("exec", src, "ping", "-c", "1", "-w", "1", name)
    return dh.docker(*argv, env=env, check=False).returncode == 0


def test_proxy_containers_survive_restarts(docker_cluster: Factory) -> None:
    c = docker_cluster(2, launch_args=RANGE)
    d1, d2 = c.docker_hosts
    env1, env2 = weave_env(d1), weave_env(d2)
    web_id = d1.docker("run", "-d", "--restart", "always", "--name", "web", BUSYBOX_IMAGE,
                       "sleep", "1000", env=env1).stdout.strip()  # fmt: skip
    d2.docker("run", "-d", "--name", "peer", BUSYBOX_IMAGE, "sleep", "1000", env=env2)
    ips = weave_ips(d1, "web", env1)
    assert len(ips) == 1

    def same_and_reachable(what: str) -> None:
        wait_until(lambda: weave_ips(d1, "web", env1) == ips, 15, 0.2, f"{what}: web's address")
        wait_until(lambda: _reachable(d2, env2, "peer", "web"), 15, 0.2, f"{what}: web by name")
        # polled too: after h1's router died, h2 drops h1's names when it garbage-collects
        # h1 (a second later) until h2 has redialled the new h1 (1-3 s), and ping by name
        # may have got in before that
        wait_until(lambda: resolves(d2, "web") == ips, 15, 0.2, f"{what}: web in h2's DNS")

    same_and_reachable("start")
    d1.docker("restart", "web", env=env1)
    same_and_reachable("docker restart")

    pid = d1.router_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: d1.router_pid() is None, 10, 0.1, "router did not die")
    d1.launch("--resume", *RANGE)
    # the new h1 knows no peer: it is connected once h2 has redialled it
    wait_for_mesh(c.hosts, timeout=30)
    same_and_reachable("router kill -9 + weave launch --resume")

    before = d1.container_pid("web")
    d1.restart_daemon()
    wait_until(lambda: d1.container_pid("web") not in (0, before), 30, 0.2, "web not restarted")
    same_and_reachable("dockerd restart")

    d1.docker("rm", "-f", "web", env=env1)
    wait_until(lambda: router_get(d1, f"/ip/{web_id}") == "", 5, 0.1, "web's address not freed")
    wait_until(lambda: resolves(d2, "web") == [], 5, 0.1, "web's name not removed")
    records = json.loads(router_get(d1, "/attachments"))["attachments"]
    assert web_id not in [r["ident"] for r in records]
