"""WeaveDNS between a Go weaver and ours (issue 7, acceptance 6): a name registered on either
side resolves on the other, and its removal on either side disappears on the other. Both
DNS servers listen on 127.0.0.1:53 in their own host namespace."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tests.interop.helpers import our_api, wait_mesh
from weavenet.harness import Host, wait_until
from weavenet.harness.goweaver import GoWeaver, InteropCluster

QUERY = """
import sys, dns.message, dns.query
q = dns.message.make_query(sys.argv[1], "A")
r = dns.query.udp(q, "127.0.0.1", timeout=2)
print(" ".join(sorted(x.address for rr in r.answer for x in rr)))
"""
LISTEN = "--dns-listen-address=127.0.0.1:53"


def resolve(host: Host, name: str) -> list[str]:
    """A records for `name` from the DNS server on 127.0.0.1:53 in `host`'s namespace."""
    return host.run([sys.executable, "-c", QUERY, name], check=False).stdout.split()


def _launch(interop: Callable[..., InteropCluster], go: Callable[..., GoWeaver]) -> tuple[
    GoWeaver, Host, Host
]:  # fmt: skip
    c = interop(2)
    h_go, h_ours = c.hosts
    upstream = c.tmpdir / "upstream.conf"
    upstream.write_text(f"nameserver {h_go.ip}\n")  # inside the underlay; never asked here
    gow = go(c, 0, args=[LISTEN, f"--resolv-conf={upstream}"])
    h_ours.launch("--ipalloc-range", "", LISTEN, f"--resolv-conf={upstream}", h_go.ip)
    wait_mesh([gow, h_ours], peers=2, est=[1, 1])
    return gow, h_go, h_ours


def test_names_cross_both_ways_and_removals_follow(
    interop: Callable[..., InteropCluster], go: Callable[..., GoWeaver]
) -> None:
    gow, h_go, h_ours = _launch(interop, go)
    gow.api.add_name("gocontainer", "10.32.0.7", "goweb.weave.local.")
    wait_until(
        lambda: resolve(h_ours, "goweb.weave.local.") == ["10.32.0.7"], 20, message="go->ours"
    )
    our_api(h_ours).ok("PUT", "/name/ourcontainer/10.32.0.8", data="fqdn=ourweb.weave.local.")
    wait_until(
        lambda: resolve(h_go, "ourweb.weave.local.") == ["10.32.0.8"], 20, message="ours->go"
    )

    gow.api.ok("DELETE", "/name/gocontainer/10.32.0.7")
    wait_until(lambda: resolve(h_ours, "goweb.weave.local.") == [], 20, message="go removal")
    our_api(h_ours).ok("DELETE", "/name/ourcontainer/10.32.0.8")
    wait_until(lambda: resolve(h_go, "ourweb.weave.local.") == [], 20, message="our removal")
