"""Entry points of ``weave-net`` and ``weave-ipam``: read env and stdin, run, print.

Success prints the result (ADD) or nothing (DEL, CHECK) and exits 0; every failure prints
one CNI error object on stdout (and its message on stderr, which runtimes log) and exits
1. The router is found at ``WEAVE_HTTP_ADDR`` (default 127.0.0.1:6784).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO, TextIO

from weavenet.cni.config import (
    SPEC_VERSION,
    SUPPORTED_VERSIONS,
    Env,
    NetConf,
    config_version,
    parse_env,
    parse_netconf,
)
from weavenet.cni.errors import INCOMPATIBLE_VERSION, KERNEL_ERROR, ROUTER_ERROR, CniError
from weavenet.cni.trace import TRACE_ENV, begin, current

Plugin = Callable[[Env, NetConf], "dict[str, Any] | None"]
CHECK_SINCE = ("0.4.0", "1.0.0")


def run(plugin: Plugin, env: Mapping[str, str], stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    trace = begin(env.get(TRACE_ENV))
    trace.note(command=env.get("CNI_COMMAND"), container=env.get("CNI_CONTAINERID"))
    status = _run(plugin, env, stdin, out, err)
    trace.finish(status)
    return status


def _run(plugin: Plugin, env: Mapping[str, str], stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    version = SPEC_VERSION
    try:
        cni_env = parse_env(env)
        if cni_env.command == "VERSION":
            info = {"cniVersion": SPEC_VERSION, "supportedVersions": list(SUPPORTED_VERSIONS)}
            out.write(json.dumps(info) + "\n")
            return 0
        raw = stdin.read()
        version = config_version(raw)
        with current().phase("parse"):
            conf = parse_netconf(raw)
        if cni_env.command == "CHECK" and conf.cni_version not in CHECK_SINCE:
            raise CniError(
                INCOMPATIBLE_VERSION,
                f"CHECK is not defined for cniVersion {conf.cni_version}: use 0.4.0 or later",
            )
        result = plugin(cni_env, conf)
    except CniError as exc:
        return _fail(exc, version, out, err)
    except Exception as exc:  # a WeaveError from the data plane, or a bug: still a CNI error
        from weavenet.core.errors import WeaveError

        code = KERNEL_ERROR if isinstance(exc, WeaveError) else ROUTER_ERROR
        return _fail(CniError(code, f"{type(exc).__name__}: {exc}"), version, out, err)
    if result is not None:
        out.write(json.dumps(result) + "\n")
    return 0


def _fail(exc: CniError, version: str, out: TextIO, err: TextIO) -> int:
    exc.write(out, version)
    err.write(f"weave-cni: {exc.msg}\n")
    return 1


def _main(plugin: Plugin) -> None:
    sys.exit(run(plugin, os.environ, sys.stdin.buffer, sys.stdout, sys.stderr))


def _net(env: Env, conf: NetConf) -> dict[str, Any] | None:
    from weavenet.cni import net

    return net.plugin(env, conf)


def _ipam(env: Env, conf: NetConf) -> dict[str, Any] | None:
    from weavenet.cni import ipam

    return ipam.plugin(env, conf)


def net_main() -> None:
    """``weave-net``"""
    _main(_net)


def ipam_main() -> None:
    """``weave-ipam``"""
    _main(_ipam)
