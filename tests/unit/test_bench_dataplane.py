"""The pure parts of `make bench` (bench/dataplane_report.py): statistics, round order,
overlay names from `weave status connections`, target verdicts and the table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.bench_modules import load_bench

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "weave28"


dr = load_bench("dataplane_report")


# ---- statistics -----------------------------------------------------------------------
def test_median_of_odd_and_even_counts_and_of_nothing() -> None:
    assert dr.median([3.0, 1.0, 2.0]) == 2.0
    assert dr.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert math.isnan(dr.median([]))


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(200, 0, -1)]  # 200 pings, unsorted
    assert dr.percentile(values, 50) == 100.0
    assert dr.percentile(values, 99) == 198.0
    assert dr.percentile(values, 100) == 200.0
    assert dr.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert dr.percentile([7.0], 99) == 7.0
    assert math.isnan(dr.percentile([], 50))
    with pytest.raises(ValueError, match="outside"):
        dr.percentile([1.0], 0)


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.floats(0.5, 100),
)
def test_percentile_splits_the_samples_at_q(values: list[float], q: float) -> None:
    p = dr.percentile(values, q)
    n = len(values)
    assert p in values
    assert sum(v <= p for v in values) >= q / 100 * n - 1e-9
    assert sum(v < p for v in values) < q / 100 * n + 1e-9


# ---- round order ----------------------------------------------------------------------
def test_rounds_rotate_by_an_even_share() -> None:
    paths = list("abcdefghi")
    orders = [dr.round_order(paths, r, 3) for r in range(3)]
    assert orders[0] == paths
    assert orders[1][:3] == ["d", "e", "f"]
    assert orders[2][:3] == ["g", "h", "i"]
    assert dr.round_order([], 0, 3) == []


@given(st.integers(1, 12), st.integers(1, 12))
def test_every_round_measures_every_path_once_in_new_places(n_paths: int, rounds: int) -> None:
    paths = [f"p{i}" for i in range(n_paths)]
    orders = [dr.round_order(paths, r, rounds) for r in range(rounds)]
    for order in orders:
        assert sorted(order) == sorted(paths)
    if rounds <= n_paths:  # then no path takes the same place twice
        for path in paths:
            places = [order.index(path) for order in orders]
            assert len(set(places)) == rounds


# ---- overlay names --------------------------------------------------------------------
def test_overlays_from_the_go_weavers_own_status_text() -> None:
    enc = (FIXTURES / "h1-enc-status-connections.txt").read_text()
    plain = (FIXTURES / "h1-plain-status-connections.txt").read_text()
    assert dr.overlays(enc) == ["encrypted sleeve"]
    assert dr.overlays(plain) == ["sleeve"]


def test_overlays_names_fastdp_and_the_fast_sleeve_and_skips_pending() -> None:
    text = (
        "-> 172.31.1.1:6783     established fastdp 7a:01(h1) mtu=1376\n"
        "-> 172.31.1.3:6783     established fast sleeve 7a:03(h3)\n"
        "-> 172.31.1.4:6783     established encrypted   fast sleeve 7a:04(h4)\n"
        "-> 172.31.1.5:6783     established unencrypted sleeve 7a:05(h5)\n"
        "-> 172.31.1.6:6783     pending     sleeve 7a:06(h6)\n"
        "-> 172.31.1.7:6783     retrying    dial tcp4: connection refused\n"
    )
    assert dr.overlays(text) == ["fastdp", "fast sleeve", "encrypted fast sleeve", "sleeve"]


# ---- summary and targets --------------------------------------------------------------
def _run(streams: int, mbps: float, cpu: float | None) -> dict[str, Any]:
    return {"streams": streams, "mbps": mbps, "gbit": mbps * 5 / 1000, "cpu_s": cpu}


def _path(mbps_1: float, mbps_4: float, p50: float, cpu: float | None = 1.0) -> dict[str, Any]:
    runs = [_run(1, mbps_1, cpu), _run(4, mbps_4, cpu)]
    return dict(dr.summarize(runs, [p50]))


def test_summarize_takes_medians_per_stream_count_and_cpu_per_gbit() -> None:
    runs = [_run(1, 100.0, 1.0), _run(1, 300.0, 2.0), _run(1, 200.0, 3.0), _run(4, 400.0, 4.0)]
    s = dr.summarize(runs, [0.5, 0.1, 0.3])
    assert (s["mbps_1"], s["mbps_4"]) == (200.0, 400.0)
    assert (s["cpu_s_1"], s["cpu_s_4"]) == (2.0, 4.0)
    assert s["cpu_s_per_gbit"] == pytest.approx(10.0 / 5.0)  # 10 CPU-s over 5 Gbit
    assert (s["ping_p50"], s["ping_p99"]) == (0.3, 0.5)
    no_router = dr.summarize([_run(1, 100.0, None)], [0.1])
    assert no_router["cpu_s_1"] is None and no_router["cpu_s_per_gbit"] is None


def _by_text(summary: dict[str, Any], missing: dict[str, str]) -> dict[str, Any]:
    return {t.text: dr.evaluate(t, summary, missing) for t in dr.TARGETS}


def test_targets_pass_at_their_limits_and_fail_past_them() -> None:
    summary = {
        "vxlan": _path(1000.0, 1000.0, 0.100),
        "fastdp": _path(900.0, 800.0, 0.120),  # exactly 90 % and exactly 1.2 x
        "go-sleeve": _path(400.0, 400.0, 0.5),
        "sleeve": _path(799.0, 900.0, 0.5),  # just under 2 x
    }
    v = _by_text(summary, {})
    assert v["fastdp >= 90 % of kernel VXLAN"].status == "PASS"
    assert v["fastdp >= 90 % of kernel VXLAN"].value == pytest.approx(0.9)
    assert "4 streams 0.80x" in v["fastdp >= 90 % of kernel VXLAN"].detail
    assert v["fastdp ping p50 <= 1.2 x kernel VXLAN's"].status == "PASS"
    assert v["sleeve >= 2 x Go's sleeve"].status == "FAIL"
    assert v["plain fast sleeve >= 3.5 Gbit/s"].status == "skip"
    assert dr.overall(summary, {}) == "FAIL"


def test_an_unavailable_path_makes_its_targets_na_with_the_reason() -> None:
    summary = {"fsleeve": _path(4000.0, 5000.0, 0.2), "go-sleeve-enc": _path(250.0, 250.0, 1)}
    missing = {"fsleeve-enc": "not available: this weaver has no --no-fast-sleeve"}
    v = _by_text(summary, missing)
    ten_x = v["encrypted fast sleeve >= 10 x Go's encrypted sleeve"]
    assert ten_x.status == "n/a"
    assert ten_x.detail == "fast sleeve, encrypted: not available (see its row)"
    assert v["plain fast sleeve >= 3.5 Gbit/s"].status == "PASS"
    assert (
        v["plain fast sleeve >= 3.5 Gbit/s"].detail
        == "1 stream 4000 Mbit/s (4 streams 5000 Mbit/s)"
    )
    assert dr.overall(summary, missing) == "INCOMPLETE"
    assert dr.overall({"fsleeve": summary["fsleeve"]}, {}) == "PASS"
    assert dr.overall({"underlay": summary["fsleeve"]}, {}) == "NO TARGET"


def test_the_table_has_a_row_per_path_and_a_line_per_target() -> None:
    summary = {"underlay": _path(9000.0, 9500.0, 0.05, cpu=None), "fastdp": _path(1, 2, 0.1)}
    missing = {"fsleeve": "not available: connections show [['sleeve']]"}
    lines = dr.table(["underlay", "fastdp", "fsleeve"], summary, {"fastdp": 51.2}, missing)
    text = "\n".join(lines)
    assert lines[2].split()[:4] == ["raw", "underlay", "9000", "9500"]
    assert lines[3].split()[-1] == "51"  # peak RSS, MB
    assert "fast sleeve                  n/a (not available: connections show" in text
    assert sum(line.startswith(("PASS", "FAIL", "n/a", "  -")) for line in lines) == len(dr.TARGETS)
