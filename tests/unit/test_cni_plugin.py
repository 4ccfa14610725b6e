"""The CNI plugins' edge without a kernel or router: environment and config checks, the
result schemas of every version, error objects, and decoders fed random bytes."""

from __future__ import annotations

import io
import ipaddress
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavenet.cni import config
from weavenet.cni.config import Env, NetConf, parse_env, parse_netconf
from weavenet.cni.errors import CniError
from weavenet.cni.main import run
from weavenet.cni.result import Interface, IpConfig, Result, parse_result

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/n", "CNI_IFNAME": "eth0"}


def conf(**fields: Any) -> bytes:
    return json.dumps(
        {"cniVersion": "1.0.0", "name": "weave", "type": "weave-net", **fields}
    ).encode()


def invoke(
    env: dict[str, str], stdin: bytes, seen: list[tuple[Env, NetConf]] | None = None
) -> tuple[int, dict[str, Any] | None]:
    out, err = io.StringIO(), io.StringIO()

    def plugin(e: Env, c: NetConf) -> dict[str, Any] | None:
        if seen is not None:
            seen.append((e, c))
        return {"cniVersion": c.cni_version, "ips": []}

    rc = run(plugin, env, io.BytesIO(stdin), out, err)
    text = out.getvalue()
    return rc, json.loads(text) if text.strip() else None


@pytest.mark.parametrize("var", ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"])
def test_each_missing_variable_is_named_with_code_4(var: str) -> None:
    env = {k: v for k, v in ENV.items() if k != var}
    rc, out = invoke(env, conf())
    assert rc == 1 and out is not None and out["code"] == 4 and var in out["msg"]


def test_del_needs_no_namespace() -> None:
    env = {**ENV, "CNI_COMMAND": "DEL"}
    del env["CNI_NETNS"]
    assert parse_env(env).netns == ""


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CNI_CONTAINERID", "-bad"),
        ("CNI_CONTAINERID", "a/b"),
        ("CNI_IFNAME", "x" * 16),
        ("CNI_IFNAME", "a:b"),
        ("CNI_COMMAND", "GC2"),
    ],
)
def test_bad_variables_are_code_4(key: str, value: str) -> None:
    with pytest.raises(CniError) as info:
        parse_env({**ENV, key: value})
    assert info.value.code == 4


def test_error_object_carries_the_callers_version() -> None:
    rc, out = invoke(ENV, conf(isGateway=True).replace(b"1.0.0", b"0.4.0"))
    assert (
        rc == 1 and out == {"cniVersion": "0.4.0", "code": 2, "msg": out["msg"]} if out else False
    )


def test_check_is_refused_before_0_4_0() -> None:
    rc, out = invoke({**ENV, "CNI_COMMAND": "CHECK"}, conf().replace(b"1.0.0", b"0.3.1"))
    assert rc == 1 and out is not None and out["code"] == 1


def test_config_fields_are_read() -> None:
    seen: list[tuple[Env, NetConf]] = []
    stdin = conf(
        bridge="br9",
        mtu=1400,
        hairpinMode=False,
        ipamTimeout=3,
        ipam={
            "subnet": "10.40.0.0/16",
            "gateway": "10.40.0.1",
            "routes": [{"dst": "10.0.0.0/8"}],
            "addresses": [{"address": "10.40.0.9/16"}],
        },
    )
    assert invoke(ENV, stdin, seen)[0] == 0
    netconf = seen[0][1]
    assert (netconf.bridge, netconf.mtu, netconf.hairpin, netconf.ipam_timeout) == (
        "br9",
        1400,
        False,
        3,
    )
    assert netconf.ipam.subnet == ipaddress.IPv4Network("10.40.0.0/16")
    assert netconf.ipam.routes == ((ipaddress.IPv4Network("10.0.0.0/8"), None),)
    assert netconf.ipam.addresses == (ipaddress.IPv4Interface("10.40.0.9/16"),)
    assert netconf.ipam.builtin


def test_version_needs_no_config() -> None:
    rc, out = invoke({"CNI_COMMAND": "VERSION"}, b"")
    assert (
        rc == 0 and out is not None and out["supportedVersions"] == list(config.SUPPORTED_VERSIONS)
    )


def _result() -> Result:
    ip = IpConfig(ipaddress.IPv4Interface("10.32.0.5/12"), ipaddress.IPv4Address("10.32.0.1"), 1)
    default = (ipaddress.IPv4Network("0.0.0.0/0"), ipaddress.IPv4Address("10.32.0.1"))
    ifaces = [
        Interface("vethwepl1", "aa:bb:cc:dd:ee:01"),
        Interface("eth0", "aa:bb:cc:dd:ee:02", "/n"),
    ]
    return Result([ip], [default], ifaces, {"nameservers": ["10.32.0.53"]})


@pytest.mark.parametrize("version", config.SUPPORTED_VERSIONS)
def test_results_round_trip_in_every_version(version: str) -> None:
    shown = _result().to_json(version)
    assert shown["cniVersion"] == version
    back = parse_result(shown)
    assert back.ips[0].address == _result().ips[0].address
    assert back.ips[0].gateway == _result().ips[0].gateway
    assert back.routes == _result().routes
    if version in ("0.1.0", "0.2.0"):
        assert set(shown) == {"cniVersion", "ip4", "dns"}
    else:
        assert all(set(i) >= {"name", "mac"} for i in shown["interfaces"])
        assert ("version" in shown["ips"][0]) == (version != "1.0.0")


@given(st.binary(max_size=300))
def test_random_stdin_is_an_error_object_or_a_config(stdin: bytes) -> None:
    try:
        parse_netconf(stdin)
    except CniError as exc:
        assert exc.code in (1, 2, 6, 7)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_random_json_configs_never_crash(data: object) -> None:
    stdin = json.dumps({"cniVersion": "1.0.0", "ipam": data, "prevResult": data, "mtu": data})
    try:
        parse_netconf(stdin.encode())
    except CniError as exc:
        assert exc.code in (2, 6, 7)
    try:
        parse_result(data)
    except CniError as exc:
        assert exc.code == 7


def test_the_plugin_imports_no_heavy_module() -> None:
    """VERSION runs on the standard library; ADD/DEL/CHECK leave netlink to the router
    and speak HTTP on a plain socket (http.client would bring email and ssl)."""
    code = (
        "import sys, io; from weavenet.cni.main import run, _net;"
        "import weavenet.cni.net, weavenet.cni.ipam, weavenet.cni.router;"
        "run(_net, {'CNI_COMMAND': 'VERSION'}, io.BytesIO(b''), io.StringIO(), io.StringIO());"
        "heavy = [m for m in ('pyroute2', 'aiohttp', 'click', 'lmdb', 'weavenet.dataplane',"
        " 'http.client', 'ssl', 'email', 'subprocess')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
