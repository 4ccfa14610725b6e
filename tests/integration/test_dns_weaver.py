"""WeaveDNS wired into real `weaver` processes on loopback: a name registered on one router
resolves on the other (over UDP, and with `weave dns-lookup`), the DNS section is in the
report after IPAM, and with --no-dns every DNS endpoint is 404 and the section absent."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import dns.message
import dns.query

from tests.integration.routers import free_port, start_router, wait_for
from weavenet.harness import venv_bin


def _a_records(host: str, port: int, name: str) -> list[str]:
    answer = dns.query.udp(dns.message.make_query(name, "A"), host, timeout=2, port=port)
    return sorted(rr.to_text() for rrset in answer.answer for rr in rrset)


def test_a_name_registered_on_one_router_resolves_on_the_other(tmp_path: Path) -> None:
    host = "127.0.0.1"
    ports = [free_port(host), free_port(host)]
    a = start_router(tmp_path, 1, extra=["--dns-listen-address", f"{host}:{ports[0]}"])
    b = start_router(tmp_path, 2, [a.address],
                     ["--dns-listen-address", f"{host}:{ports[1]}"])  # fmt: skip
    try:
        status, _ = a.http("PUT", "/name/c1/10.32.0.9", form={"fqdn": ["web.weave.local."]})
        assert status == 204
        wait_for(lambda: _a_records(host, ports[1], "web.weave.local.") == ["10.32.0.9"] or None,
                 10, "web resolves on b")  # fmt: skip
        env = {**os.environ, "WEAVE_HTTP_ADDR": f"{b.host}:{b.http_port}"}
        out = subprocess.run([str(venv_bin() / "weave"), "dns-lookup", "web.weave.local"],
                             capture_output=True, text=True, env=env, timeout=30)  # fmt: skip
        assert (out.returncode, out.stdout) == (0, "10.32.0.9\n"), out.stderr
        keys = list(b.report())
        assert "DNS" in keys and b.report()["DNS"]["Domain"] == "weave.local."
    finally:
        b.stop()
        a.stop()


def test_no_dns_mounts_nothing(tmp_path: Path) -> None:
    r = start_router(tmp_path, 1, extra=["--no-dns"])
    try:
        assert r.http("GET", "/domain")[0] == 404
        assert r.http("PUT", "/name/c1/10.32.0.9", form={"fqdn": ["x.weave.local."]})[0] == 404
        assert "DNS" not in r.report()
    finally:
        r.stop()
