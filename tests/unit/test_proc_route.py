"""The /proc/net/route reader behind `weave launch`'s --ipalloc-range check."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

from weavenet.dataplane.proc_route import main_routes, overlapping_main_route

# eth0: default via 192.0.2.1, 192.0.2.0/24; weave: 10.32.0.0/12 (the bridge's own)
TABLE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
weave\t0000200A\t00000000\t0001\t0\t0\t0\t0000F0FF\t0\t0\t0
"""


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_reads_destinations_and_skips_the_default_route() -> None:
    assert list(main_routes(TABLE)) == [
        ("eth0", net("192.0.2.0/24")),
        ("weave", net("10.32.0.0/12")),
    ]


def test_finds_an_overlap_unless_it_is_via_an_ignored_interface() -> None:
    assert overlapping_main_route(net("192.0.2.128/25"), table=TABLE) == net("192.0.2.0/24")
    assert overlapping_main_route(net("10.40.0.0/16"), table=TABLE) == net("10.32.0.0/12")
    assert overlapping_main_route(net("10.40.0.0/16"), ignore=("weave",), table=TABLE) is None
    assert overlapping_main_route(net("198.51.100.0/24"), table=TABLE) is None


def test_reading_the_live_table_works() -> None:
    # whatever this machine's routes are, the live file parses and 0.0.0.0/32 (never
    # routed except by the default route, which is skipped) is free
    assert overlapping_main_route(net("0.0.0.0/32")) is None


def test_the_cli_does_not_import_pyroute2_to_check_the_range() -> None:
    code = (
        "import sys, weavenet.cli.main, weavenet.cli.launch_args as l; "
        "l._overlap('10.32.0.0/12'); print('pyroute2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
