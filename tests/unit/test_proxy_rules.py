"""The proxy's pure rules: endpoints, WEAVE_CIDR, hostnames (Go's ReplaceAllString), the
create rewrite, Weave's /etc/hosts and the inspect rewrite."""

from __future__ import annotations

import contextlib
import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavenet.cli.ipam_client import Claim, Subnet
from weavenet.proxy import rules
from weavenet.proxy.rules import Endpoint, ProxySettings, RuleError, Skip

SETTINGS = ProxySettings(wait_volume="/var/lib/weave/weavewait")


@pytest.mark.parametrize(
    ("method", "path", "want"),
    [
        ("POST", "/containers/create", Endpoint.CREATE),
        ("POST", "/v1.41/containers/create", Endpoint.CREATE),
        ("POST", "/v1.41/containers/abc/start", Endpoint.START),
        ("POST", "/containers/abc/restart", Endpoint.START),
        ("GET", "/v1.41/containers/abc/json", Endpoint.INSPECT),
        ("DELETE", "/v1.41/containers/abc", Endpoint.DELETE),
        ("GET", "/v1.41/containers/abc/logs", None),
        ("POST", "/v1.41/containers/abc/attach", None),
        ("GET", "/v1.41/containers/json", None),
        ("POST", "/v1.41/containers/abc/kill", None),
        ("GET", "/v1.41/containers/create", None),
    ],
)
def test_classify(method: str, path: str, want: Endpoint | None) -> None:
    assert rules.classify(method, path) is want


def test_container_in_path() -> None:
    assert rules.container_in_path("/v1.41/containers/web/start") == "web"
    assert rules.container_in_path("/containers/abc") == "abc"


@pytest.mark.parametrize("mode", ["host", "container:abc", "weave", "mynet"])
def test_other_networks_are_left_alone(mode: str) -> None:
    decision = rules.weave_cidrs(mode, ["WEAVE_CIDR=net:10.2.5.0/24"], False)
    assert isinstance(decision, Skip)
    assert mode in decision.reason


def test_weave_cidr_forms() -> None:
    assert rules.weave_cidrs("", [], False) == []
    assert rules.weave_cidrs("default", ["WEAVE_CIDR="], False) == []
    net = rules.weave_cidrs("bridge", ["A=1", "WEAVE_CIDR=net:10.2.5.0/24"], False)
    assert net == [Subnet(ipaddress.IPv4Interface("10.2.5.0/24"))]
    both = rules.weave_cidrs(None, ["WEAVE_CIDR=ip:10.2.5.7/24 net:default"], False)
    assert both == [Claim(ipaddress.IPv4Interface("10.2.5.7/24")), Subnet(None)]
    assert isinstance(rules.weave_cidrs("", ["WEAVE_CIDR=none"], False), Skip)
    assert isinstance(rules.weave_cidrs("", [], True), Skip)
    assert rules.weave_cidrs("", ["WEAVE_CIDR=net:default"], True) == [Subnet(None)]


@pytest.mark.parametrize("value", ["net:10.2.5.0", "bogus", "ip:10.2.5.300/24", "10.2.5.0/24"])
def test_malformed_weave_cidr_is_refused_with_the_reason(value: str) -> None:
    with pytest.raises(RuleError) as err:
        rules.weave_cidrs("", [f"WEAVE_CIDR={value}"], False)
    assert f"invalid WEAVE_CIDR {value!r}" in str(err.value)
    assert err.value.status == 400


@given(st.lists(st.text(max_size=40), max_size=5), st.text(max_size=20))
def test_weave_cidrs_never_fails_otherwise(env: list[str], mode: str) -> None:
    with contextlib.suppress(RuleError):  # anything else escaping fails the test
        rules.weave_cidrs(mode, [f"WEAVE_CIDR={e}" for e in env] + env, False)


@pytest.mark.parametrize(
    ("pattern", "template", "text", "want"),
    [
        ("(.*)", "$1", "web", "web"),
        ("(.*)", "my-app-$1", "web", "my-app-web"),  # Python's re.sub gives my-app-webmy-app-
        (r"^aws-[0-9]+-(.*)$", "$1", "aws-12-db", "db"),
        (r"^aws-[0-9]+-(.*)$", "$1", "other", "other"),
        ("(?P<n>[a-z]+)", "${n}-x", "ab1cd", "ab-x1cd-x"),
        ("b", "$$", "abc", "a$c"),
        ("(a)", "$2$1x", "a", ""),  # $1x is a group named "1x": empty, as in Go
        ("x*", "-", "abc", "-a-b-c-"),
    ],
)
def test_go_replace_all(pattern: str, template: str, text: str, want: str) -> None:
    assert rules.go_replace_all(re.compile(pattern), template, text) == want


def test_hostname_from_label_and_match() -> None:
    settings = ProxySettings("/w", hostname_from_label="host", hostname_match="^aws-(.*)$")
    assert rules.container_hostname("aws-web", None, settings) == "web"
    assert rules.container_hostname("aws-web", {"host": "aws-db"}, settings) == "db"
    assert rules.container_hostname("aws-web", {"other": "x"}, settings) == "web"
    bad = ProxySettings("/w", hostname_match="(")
    with pytest.raises(RuleError, match="Incorrect hostname match"):
        rules.container_hostname("web", None, bad)


def _create(body: dict[str, object], image: dict[str, object] | None = None) -> dict[str, object]:
    return rules.rewrite_create(body, "web", image, ["10.32.0.2"], SETTINGS)


def test_create_rewrite_takes_the_image_command_and_adds_the_wait_program() -> None:
    body = {"Image": "busybox", "HostConfig": {"Binds": ["/x:/w", "/data:/data:ro"]}}
    out = _create(body, {"Entrypoint": None, "Cmd": ["/bin/sh"]})
    assert out["Entrypoint"] == ["/w/w"]
    assert out["Cmd"] == ["/bin/sh"]
    host_config = out["HostConfig"]
    assert isinstance(host_config, dict)
    assert host_config["Binds"] == ["/data:/data:ro", "/var/lib/weave/weavewait:/w:ro"]
    assert host_config["Dns"] == ["10.32.0.2"]
    assert host_config["DnsSearch"] == ["weave.local"]
    assert (out["Hostname"], out["Domainname"]) == ("web", "weave.local")
    assert body == {"Image": "busybox", "HostConfig": {"Binds": ["/x:/w", "/data:/data:ro"]}}


def test_create_rewrite_keeps_what_the_user_gave() -> None:
    body = {
        "Entrypoint": ["/bin/app"],
        "Cmd": ["-v"],
        "Hostname": "mine",
        "HostConfig": {"Dns": ["8.8.8.8"], "DnsSearch": ["example.com"]},
    }
    out = _create(body)
    assert out["Entrypoint"] == ["/w/w", "/bin/app"]
    assert out["Cmd"] == ["-v"]
    assert out["Hostname"] == "mine" and "Domainname" not in out
    assert out["HostConfig"] == {
        "Dns": ["8.8.8.8", "10.32.0.2"],
        "DnsSearch": ["example.com"],
        "Binds": ["/var/lib/weave/weavewait:/w:ro"],
    }
    again = _create(out)
    assert again["Entrypoint"] == ["/w/w", "/bin/app"]  # only once, even for committed images


def test_create_rewrite_without_dns_and_long_names() -> None:
    quiet = ProxySettings("/w", without_dns=True)
    out = rules.rewrite_create({"Cmd": ["true"]}, "web", None, ["10.32.0.2"], quiet)
    assert "Hostname" not in out and "Dns" not in out["HostConfig"]
    long_name = "x" * 60
    out = rules.rewrite_create({"Cmd": ["true"]}, long_name, None, [], SETTINGS)
    assert "Hostname" not in out


def test_create_without_any_command_is_refused() -> None:
    with pytest.raises(RuleError, match="No command specified"):
        _create({"Image": "scratch"}, {"Entrypoint": None, "Cmd": None})
    with pytest.raises(RuleError, match="Env must be a list"):
        rules.create_decision({"Env": "A=1"}, False)
    with pytest.raises(RuleError, match="JSON object"):
        rules.create_decision([1], False)


def test_hosts_content_is_weaves() -> None:
    cidrs = [ipaddress.IPv4Interface("10.32.0.1/12"), ipaddress.IPv4Interface("10.2.5.7/24")]
    text = rules.hosts_content("web.weave.local", cidrs, ["db:10.0.0.9", "junk"])
    assert text == (
        "# created by Weave - BEGIN\n"
        "# container hostname\n"
        "10.32.0.1       web.weave.local web\n"
        "10.2.5.7        web.weave.local web\n"
        "\n"
        "# static names added with --add-host\n"
        "10.0.0.9        db\n"
        "\n"
        "# default localhost entries\n"
        "127.0.0.1       localhost\n"
        "::1             ip6-localhost ip6-loopback\n"
        "fe00::0         ip6-localnet\n"
        "ff00::0         ip6-mcastprefix\n"
        "ff02::1         ip6-allnodes\n"
        "ff02::2         ip6-allrouters\n"
        "# created by Weave - END\n"
    )
    assert "10.32.0.1       web\n" in rules.hosts_content("web.", cidrs[:1], [])


def test_container_cidrs_needs_the_wait_entrypoint() -> None:
    info = {"Config": {"Entrypoint": ["/bin/sh"], "Env": []}, "HostConfig": {}}
    assert isinstance(rules.container_cidrs(info, False), Skip)
    info["Config"] = {"Entrypoint": ["/w/w", "/bin/sh"], "Env": ["WEAVE_CIDR=net:10.2.5.0/24"]}
    assert rules.container_cidrs(info, False) == [Subnet(ipaddress.IPv4Interface("10.2.5.0/24"))]


def test_rewrite_inspect() -> None:
    info = {"Id": "abc", "NetworkSettings": {"IPAddress": "", "Ports": {}}}
    out = rules.rewrite_inspect(info, [ipaddress.IPv4Interface("10.32.0.1/12")], "aa:bb")
    assert out["NetworkSettings"] == {
        "IPAddress": "10.32.0.1",
        "IPPrefixLen": 12,
        "MacAddress": "aa:bb",
        "Ports": {},
    }
    assert rules.rewrite_inspect(info, [], None) is info
