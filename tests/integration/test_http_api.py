"""The router HTTP API served by aiohttp on a real loopback port (and a unix socket)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from weavenet.api.http import make_app, make_status_app, split_host_port
from weavenet.api.testing import FakeRouterControl, serve_in_thread

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weave28"


@pytest.fixture
def control() -> FakeRouterControl:
    report = json.loads((FIXTURES / "h1-plain-report.json").read_text())
    return FakeRouterControl(report)


@pytest.fixture
def addr(control: FakeRouterControl) -> Iterator[str]:
    with serve_in_thread(make_app(control)) as bound:
        yield bound


def request(
    addr: str,
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    host, port = split_host_port(addr)
    conn = http.client.HTTPConnection(host or "127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode()
    finally:
        conn.close()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_status_is_the_golden_text(addr: str) -> None:
    status, headers, body = request(addr, "GET", "/status")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == (FIXTURES / "h1-plain-status.txt").read_text()


def test_status_is_503_until_ready(addr: str, control: FakeRouterControl) -> None:
    control.state["Ready"] = False
    status, _, body = request(addr, "GET", "/status")
    assert status == 503
    assert body.startswith("        Version:")
    assert request(addr, "GET", "/status/peers")[0] == 503


@pytest.mark.parametrize(
    ("view", "golden"),
    [
        ("peers", "h1-plain-status-peers.txt"),
        ("connections", "h1-plain-status-connections.txt"),
        ("targets", "h1-plain-status-targets.txt"),
        ("dns", "h1-plain-status-dns.txt"),
        ("ipam", "h1-plain-status-ipam.txt"),
    ],
)
def test_status_views(addr: str, view: str, golden: str) -> None:
    status, headers, body = request(addr, "GET", f"/status/{view}")
    assert (status, headers["Content-Type"]) == (200, "text/plain; charset=utf-8")
    assert body == (FIXTURES / golden).read_text()


def test_unknown_or_disabled_views_are_404(addr: str, control: FakeRouterControl) -> None:
    assert request(addr, "GET", "/status/bogus")[0] == 404
    del control.state["DNS"], control.state["IPAM"]
    assert request(addr, "GET", "/status/dns")[0] == 404
    assert request(addr, "GET", "/status/ipam")[0] == 404
    assert request(addr, "GET", "/status/peers")[0] == 200


def test_report_json_is_go_indented(addr: str) -> None:
    status, headers, body = request(addr, "GET", "/report", headers={"Accept": "application/json"})
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert body == (FIXTURES / "h1-plain-report.json").read_text()


def test_report_without_format_is_400_like_go(addr: str) -> None:
    status, headers, body = request(addr, "GET", "/report")
    assert status == 400
    assert body == "error: must supply one format parameter\n"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert request(addr, "GET", "/report?format=a&format=b")[0] == 400


def test_report_format_template(addr: str) -> None:
    template = quote("{{.Router.Name}} {{len .Router.Peers}} {{json .DNS.Upstream}}")
    status, _, body = request(addr, "GET", f"/report?format={template}")
    assert (status, body) == (200, 'a2:00:00:00:00:01 2 ["172.31.77.254"]')


def test_report_template_errors(addr: str) -> None:
    status, _, body = request(addr, "GET", "/report?format=" + quote("{{.Router.Name"))
    assert status == 400 and body.startswith("template: format:1:")
    status, _, body = request(addr, "GET", "/report?format=" + quote("{{.Nope.Deeper}}"))
    assert (status, body) == (500, "error during template execution\n")


def test_metrics(addr: str, control: FakeRouterControl) -> None:
    control.state["Router"]["TerminationCount"] = 7
    status, headers, body = request(addr, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "weave_connection_terminations_total 7\n" in body
    assert 'weave_connections{encryption="",state="established",type="sleeve"} 1' in body


def test_connect_and_replace(addr: str, control: FakeRouterControl) -> None:
    status, _, body = request(addr, "POST", "/connect", "peer=10.0.0.5&peer=10.0.0.6:6783", FORM)
    assert (status, body) == (200, "")
    assert control.calls[-1] == ("connect", ["10.0.0.5", "10.0.0.6:6783"], False)
    assert request(addr, "GET", "/status/targets")[2] == "10.0.0.5\n10.0.0.6:6783\n"
    request(addr, "POST", "/connect", "peer=10.0.0.9&replace=true", FORM)
    assert control.calls[-1] == ("connect", ["10.0.0.9"], True)
    assert request(addr, "GET", "/status/targets")[2] == "10.0.0.9\n"


def test_connect_reports_bad_addresses_as_400(addr: str) -> None:
    status, headers, body = request(addr, "POST", "/connect", "peer=a:b&peer=c:d", FORM)
    assert status == 400
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.splitlines() == [
        "invalid peer address 'a:b': expected host[:port]",
        "invalid peer address 'c:d': expected host[:port]",
    ]


def test_connect_accepts_query_parameters_too(addr: str, control: FakeRouterControl) -> None:
    assert request(addr, "POST", "/connect?peer=10.0.0.7")[0] == 200
    assert control.calls[-1] == ("connect", ["10.0.0.7"], False)


def test_forget(addr: str, control: FakeRouterControl) -> None:
    request(addr, "POST", "/connect", "peer=10.0.0.5&peer=10.0.0.6", FORM)
    assert request(addr, "POST", "/forget", "peer=10.0.0.5", FORM)[0] == 200
    assert control.calls[-1] == ("forget", ["10.0.0.5"], False)
    assert request(addr, "GET", "/status/targets")[2] == "10.0.0.6\n"


def test_wrong_method_and_unknown_path(addr: str) -> None:
    assert request(addr, "GET", "/connect")[0] == 405
    assert request(addr, "GET", "/nowhere")[0] == 404


def test_status_app_is_read_only(control: FakeRouterControl) -> None:
    with serve_in_thread(make_status_app(control)) as addr:
        assert request(addr, "GET", "/status")[0] == 200
        assert request(addr, "GET", "/metrics")[0] == 200
        assert request(addr, "GET", "/report?format=x")[2] == "x"
        assert request(addr, "POST", "/connect", "peer=10.0.0.5", FORM)[0] in (404, 405)
        assert control.calls == []


def test_unix_socket(control: FakeRouterControl, tmp_path: Path) -> None:
    from weavenet.cli.client import call

    path = str(tmp_path / "weave.sock")
    Path(path).touch()  # a regular file there must not be removed...
    with pytest.raises(OSError), serve_in_thread(make_app(control), path):
        pass
    Path(path).unlink()
    with serve_in_thread(make_app(control), path) as bound:
        assert bound == path
        status, body = call("GET", "/status/peers", addr=path)
        assert status == 200 and body.startswith("a2:00:00:00:00:01(anc-h1)\n")
    # ...but a stale socket left by a previous run is replaced.
    with serve_in_thread(make_app(control), path):
        assert call("POST", "/connect", form={"peer": ["10.0.0.5"]}, addr=path) == (200, "")


@pytest.mark.parametrize(
    ("addr", "expected"),
    [("127.0.0.1:6784", ("127.0.0.1", 6784)), (":6782", (None, 6782)), ("[::1]:80", ("::1", 80))],
)
def test_split_host_port(addr: str, expected: Any) -> None:
    assert split_host_port(addr) == expected


@pytest.mark.parametrize("addr", ["6784", "host:", "host:http", "h:70000"])
def test_split_host_port_rejects(addr: str) -> None:
    with pytest.raises(ValueError, match="host:port or /path/to/socket"):
        split_host_port(addr)
