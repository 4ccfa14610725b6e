"""IPAM for the plugins: the router's (built in, keyed by CNI_CONTAINERID), or another
IPAM plugin run as CNI says (``ipam.type`` names it, found in CNI_PATH).

``weave-ipam`` is this module on its own, for other plugins (``"ipam": {"type":
"weave-ipam"}``): ADD prints the addresses, DEL frees them, CHECK verifies that IPAM
still holds them. Every built-in ADD first registers the container with the router
(``PUT /cni/<id>``), so that the router frees its addresses if no DEL ever comes.
"""

from __future__ import annotations

import json
import os
from typing import Any

from weavenet.cni.config import Env, NetConf
from weavenet.cni.errors import CHECK_FAILED, DELEGATE_FAILED, INVALID_ENV, CniError
from weavenet.cni.result import IpConfig, Result, delegate_result, parse_result
from weavenet.cni.router import Router
from weavenet.cni.trace import current

DELEGATE_GRACE = 5.0


def _plugin_path(env: Env, name: str) -> str:
    if "/" in name:
        raise CniError(DELEGATE_FAILED, f"ipam type {name!r} must be a plugin name, not a path")
    if not env.path:
        raise CniError(INVALID_ENV, f"CNI_PATH is not set: it is needed to find IPAM plugin {name}")
    for folder in env.path:
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise CniError(
        DELEGATE_FAILED,
        f"IPAM plugin {name!r} not found in CNI_PATH {':'.join(env.path)}: install it there",
    )


def run_delegate(env: Env, conf: NetConf, command: str) -> dict[str, Any] | None:
    """Run the configured IPAM plugin with `command`; its result (ADD) or None."""
    import subprocess  # only here: the built-in IPAM never needs it

    plugin = _plugin_path(env, conf.ipam.type)
    child_env = {**os.environ, "CNI_COMMAND": command}
    try:
        with current().phase(f"delegate {command} {conf.ipam.type}"):
            proc = subprocess.run(
                [plugin],
                input=conf.raw,
                env=child_env,
                capture_output=True,
                timeout=conf.ipam_timeout + DELEGATE_GRACE,
                check=False,
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CniError(DELEGATE_FAILED, f"IPAM plugin {plugin} failed to run: {exc}") from None
    try:
        answer = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        answer = None
    if proc.returncode != 0:
        if isinstance(answer, dict) and isinstance(answer.get("code"), int):
            raise CniError(
                answer["code"],
                f"IPAM plugin {conf.ipam.type}: {answer.get('msg')}",
                str(answer.get("details", "")),
            )
        why = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        raise CniError(DELEGATE_FAILED, f"IPAM plugin {conf.ipam.type} failed: {why}")
    return answer if isinstance(answer, dict) else None


def add(env: Env, conf: NetConf, router: Router) -> Result:
    """Addresses for the container (claimed if the config lists them, else allocated)."""
    ipam = conf.ipam
    if not ipam.builtin:
        return delegate_result(run_delegate(env, conf, "ADD"))
    router.register(env.container_id, env.netns, env.ifname)
    if ipam.addresses:
        for cidr in ipam.addresses:
            router.claim(env.container_id, cidr, conf.ipam_timeout)
        cidrs = list(ipam.addresses)
    else:
        cidrs = [router.allocate(env.container_id, ipam.subnet, conf.ipam_timeout)]
    ips = [IpConfig(c, ipam.gateway) for c in cidrs]
    return Result(ips, list(ipam.routes or ()), [], conf.dns)


def delete(env: Env, conf: NetConf, router: Router) -> None:
    if not conf.ipam.builtin:
        run_delegate(env, conf, "DEL")
        return
    router.release(env.container_id)
    router.unregister(env.container_id)


def check(env: Env, conf: NetConf, router: Router, prev: Result) -> list[str]:
    """What is wrong with the container's addresses in IPAM ([] if nothing)."""
    if not conf.ipam.builtin:
        run_delegate(env, conf, "CHECK")
        return []
    owned = {c.ip for c in router.lookup(env.container_id)}
    return [
        f"address {ip.address} is no longer allocated to {env.container_id} in weave IPAM"
        for ip in prev.ips
        if ip.address.ip not in owned and ip.address not in conf.ipam.addresses
    ]


def prev_result(conf: NetConf) -> Result:
    if conf.prev_result is None:
        raise CniError(
            CHECK_FAILED,
            "CHECK needs the ADD result in prevResult: the runtime "
            "must pass it (cniVersion 0.4.0 or later)",
        )
    return parse_result(conf.prev_result)


# --- weave-ipam --------------------------------------------------------------------------


def plugin(env: Env, conf: NetConf) -> dict[str, Any] | None:
    router = Router()
    if env.command == "ADD":
        if not conf.ipam.builtin:  # weave-ipam is the IPAM: ignore a nested type
            conf = _builtin(conf)
        return add(env, conf, router).to_json(conf.cni_version)
    if env.command == "DEL":
        delete(env, _builtin(conf), router)
        return None
    problems = check(env, _builtin(conf), router, prev_result(conf))
    if problems:
        raise CniError(CHECK_FAILED, "; ".join(problems) + ": delete and re-create the container")
    return None


def _builtin(conf: NetConf) -> NetConf:
    return conf._replace(ipam=conf.ipam._replace(type=""))
