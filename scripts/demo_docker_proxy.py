"""`make demo`, Docker part (the proxy way): two hosts, each with a real dockerd and a
router from `weave launch`; `eval $(weave env)` points docker at the proxy; plain `docker
run` on each host, and the containers ping each other by name. Skipped (exit 0) where a
Docker daemon cannot be started. Everything is torn down at the end, also on Ctrl-C.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from weavenet.harness import wait_for_mesh, wait_until
from weavenet.harness.docker import BUSYBOX_IMAGE, DockerCluster, DockerHost, docker_unusable_reason


def say(text: str = "") -> None:
    print(text, flush=True)


def weave_env(dh: DockerHost) -> dict[str, str]:
    """`eval $(weave env)`, shown and applied to this host's docker commands."""
    line = dh.weave("env").stdout.strip()
    say(f"[{dh.name}] $ weave env\n[{dh.name}] {line}")
    return dict(word.split("=", 1) for word in line.split()[1:])


def ping(dh: DockerHost, env: dict[str, str], src: str, dst: str) -> None:
    out = dh.docker("exec", src, "ping", "-c", "2", dst, env=env, check=False)
    summary = [line for line in out.stdout.splitlines() if "packets" in line or "PING" in line]
    say(f"[{dh.name}] $ docker exec {src} ping -c 2 {dst}")
    for line in summary:
        say(f"[{dh.name}]   {line}")
    if out.returncode != 0:
        raise RuntimeError(f"{src} cannot ping {dst}: {out.stdout}{out.stderr}")


def run_demo() -> None:
    with DockerCluster(2) as cluster:
        d1, d2 = cluster.docker_hosts
        say("== Docker: two hosts, the Docker API proxy (eval $(weave env); docker run) ==")
        d1.launch()
        d2.launch(d1.ip)
        wait_for_mesh(cluster.hosts, timeout=60)
        env1, env2 = weave_env(d1), weave_env(d2)
        for dh, env, name in ((d1, env1, "alpha"), (d2, env2, "beta")):
            dh.docker("run", "-d", "--name", name, BUSYBOX_IMAGE, "sleep", "600", env=env)
            addr = dh.docker("exec", name, "ip", "-o", "-4", "addr", "show", "ethwe", env=env)
            say(f"[{dh.name}] $ docker run -d --name {name} {BUSYBOX_IMAGE} sleep 600")
            say(f"[{dh.name}]   {name} has ethwe {addr.stdout.split()[3]}")
        wait_until(lambda: d1.docker("exec", "alpha", "nslookup", "beta", env=env1,
                                     check=False).returncode == 0, 30, 0.2)  # fmt: skip
        ping(d1, env1, "alpha", "beta")
        ping(d2, env2, "beta", "alpha")
        first = d2.docker("run", "--rm", BUSYBOX_IMAGE, "ping", "-c", "1", "alpha", env=env2,
                          check=False)  # fmt: skip
        verdict = "succeeds" if first.returncode == 0 else "FAILS"
        say(f"[{d2.name}] a new container whose first command pings alpha: {verdict}")
        if first.returncode != 0:
            raise RuntimeError(first.stdout + first.stderr)
        say("Docker part (proxy) done: containers on two hosts reach each other by name.")


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    reason = docker_unusable_reason()
    if reason is not None:
        say(f"Docker part (proxy) skipped: {reason}")
        return 0
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        run_demo()
    except KeyboardInterrupt:
        say("interrupted; everything was torn down")
        return 130
    except Exception as exc:
        say(f"Docker demo (proxy) failed: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
