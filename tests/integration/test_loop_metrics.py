"""A real router measures its own event loop and shows it in /metrics (issue 10)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.routers import RouterProc, router_pair, wait_for

_SAMPLE = re.compile(r"^(weavenet_event_loop_\w+?)(\{[^}]*\})? (\S+)$", re.M)


def loop_samples(router: RouterProc) -> dict[str, float]:
    status, body = router.http("GET", "/metrics")
    assert status == 200, body
    return {name + (labels or ""): float(value) for name, labels, value in _SAMPLE.findall(body)}


def test_metrics_show_event_loop_steps_and_lag(tmp_path: Path) -> None:
    with router_pair(tmp_path) as (a, _b):
        first = loop_samples(a)
        assert first["weavenet_event_loop_step_seconds_count"] > 0
        assert (
            first['weavenet_event_loop_step_seconds_bucket{le="+Inf"}']
            == (first["weavenet_event_loop_step_seconds_count"])
        )
        assert first["weavenet_event_loop_step_max_seconds"] > 0
        assert (
            first["weavenet_event_loop_step_seconds_sum"]
            >= (first["weavenet_event_loop_step_max_seconds"])
        )
        # the loop keeps stepping (heartbeats, the lag probe, our own requests) and the
        # probe fires every 0.5 s
        wait_for(
            lambda: (
                loop_samples(a)["weavenet_event_loop_step_seconds_count"]
                > first["weavenet_event_loop_step_seconds_count"]
            ),
            10.0,
            "more event-loop steps",
        )
        assert "weavenet_event_loop_lag_max_seconds" in first
        assert loop_samples(a)["weavenet_event_loop_lag_seconds"] >= 0
