"""dnspython is loaded on the first query the fast path does not take, never before."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from tests.unit.lazy_probe import run_probe

PROBE = """
import random
import weavenet.api.dns_report
import weavenet.core.dns.upstream
import weavenet.io.dns_listeners
import weavenet.io.dns_shell
from weavenet.core.dns.resolver import Resolver, ResolverConfig

class Names:
    def lookup_name_tuple(self, key):
        return (0x0A200001,) if key == "web.weave.local." else ()
    def lookup_addr(self, addr):
        return None

def query(qtype):  # id 0x1234, RD, one question: web.weave.local. IN <qtype>
    head = bytes.fromhex("123401000001000000000000")
    return head + b"\\x03web\\x05weave\\x05local\\x00" + qtype + b"\\x00\\x01"

out["after_import"] = loaded("dns")
resolver = Resolver(ResolverConfig(), Names())
out["after_resolver"] = loaded("dns")
fast = resolver.answer(query(b"\\x00\\x01"), "127.0.0.1", "udp", 0.0, random.Random(1))
out["after_fast"] = loaded("dns")
slow = resolver.answer(query(b"\\x00\\x1c"), "127.0.0.1", "udp", 0.0, random.Random(1))
out["after_slow"] = loaded("dns")
out["fast"] = fast.hex()
out["slow"] = slow.hex()
"""


def test_the_router_s_dns_modules_do_not_load_dnspython_until_a_slow_query() -> None:
    out = run_probe(PROBE)
    assert not out["after_import"]
    assert not out["after_resolver"]
    assert not out["after_fast"]
    assert out["after_slow"]
    fast = dns.message.from_wire(bytes.fromhex(out["fast"]))
    assert [r.to_text() for r in fast.answer[0]] == ["10.32.0.1"]
    slow = dns.message.from_wire(bytes.fromhex(out["slow"]))  # AAAA of a known name
    assert slow.id == 0x1234 and slow.rcode() == dns.rcode.NOERROR and not slow.answer
    assert slow.flags & dns.flags.AA
    assert slow.question[0].rdtype == dns.rdatatype.AAAA
