"""Running the CNI plugins by hand, as a runtime does: env CNI_*, config on stdin."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from weavenet.harness import Container, Host, venv_bin

MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
REFERENCE_PLUGINS = "/usr/lib/cni"


@dataclass
class Answer:
    rc: int
    out: dict[str, Any] | None
    stdout: str
    stderr: str

    @property
    def code(self) -> int | None:
        return None if self.out is None else self.out.get("code")

    @property
    def msg(self) -> str:
        return "" if self.out is None else str(self.out.get("msg", ""))


def netconf(version: str = "1.0.0", **fields: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": "weave", "type": "weave-net", **fields}


def new_id() -> str:
    return "cn" + secrets.token_hex(16)


@dataclass
class Invocation:
    """One container as the runtime sees it: id, namespace file, interface name."""

    host: Host
    netns: str
    container_id: str = field(default_factory=new_id)
    ifname: str = "eth0"
    plugin: str = "weave-net"  # a name in the venv's bin, or an absolute path

    @staticmethod
    def of(container: Container, **kw: Any) -> Invocation:
        return Invocation(container.host, f"/run/netns/{container.netns}", **kw)

    def env(self, command: str) -> dict[str, str]:
        return {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": self.container_id,
            "CNI_NETNS": self.netns,
            "CNI_IFNAME": self.ifname,
            "CNI_PATH": f"{venv_bin()}:{REFERENCE_PLUGINS}",
        }

    def __call__(
        self,
        command: str,
        conf: dict[str, Any] | str,
        drop: tuple[str, ...] = (),
        timeout: float = 60.0,
    ) -> Answer:
        env = {k: v for k, v in self.env(command).items() if k not in drop}
        # the host's env may not carry CNI_*: remove what we drop from it too
        env.update({k: "" for k in drop})
        stdin = conf if isinstance(conf, str) else json.dumps(conf)
        proc = self.host.run([str(venv_bin() / self.plugin)], input=stdin, env=env,  # "/" wins
                             check=False, timeout=timeout)  # fmt: skip
        try:
            out = json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            out = None
        return Answer(proc.returncode, out, proc.stdout, proc.stderr)

    def add(self, conf: dict[str, Any]) -> dict[str, Any]:
        answer = self("ADD", conf)
        assert answer.rc == 0 and answer.out is not None, answer
        return answer.out


def addresses(ns: Container, ifname: str = "eth0") -> list[str]:
    out = ns.run(["ip", "-j", "-4", "addr", "show", "dev", ifname], check=False).stdout
    if not out.strip():
        return []
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out) for a in link["addr_info"]]


def routes(ns: Container) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(ns.run(["ip", "-j", "-4", "route"]).stdout)
    return found


def owned(host: Host, ident: str) -> list[str]:
    """The addresses the router's IPAM holds for `ident` (GET /ip/<ident>)."""
    body = host.run(["curl", "-sf", f"http://127.0.0.1:6784/ip/{ident}"]).stdout
    return body.split()


def registered(host: Host) -> set[str]:
    body = host.run(["curl", "-sf", "http://127.0.0.1:6784/cni"]).stdout
    return {c["ident"] for c in json.loads(body)["containers"]}
