"""/metrics: prometheus_client is imported at the first scrape, not when the app is made,
and what the first scrape shows is what an eagerly built registry shows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from tests.unit.lazy_probe import run_probe
from weavenet.api.http import REGISTRY_KEY, make_app
from weavenet.api.metrics import LoopCollector, make_registry, render_metrics
from weavenet.api.metrics_registry import MetricsRegistry
from weavenet.api.testing import FakeRouterControl, sample_report
from weavenet.io.loop_monitor import LoopMonitor

PROBE = """
import asyncio
from aiohttp.test_utils import TestClient, TestServer
import weavenet.api.dns_report
from weavenet.api.http import make_app, make_status_app
from weavenet.api.testing import FakeRouterControl, sample_report
from weavenet.io.loop_monitor import LoopMonitor
from weavenet.startup import Running, with_loop_metrics

control = FakeRouterControl(sample_report())
run = Running(shell=None, store=None, monitor=LoopMonitor())  # only the monitor is read
app = with_loop_metrics(make_app(control), run)
with_loop_metrics(make_status_app(control), run)
out["after_apps"] = loaded("prometheus_client")

async def scrape():
    async with TestClient(TestServer(app)) as client:
        await client.get("/status")
        out["after_status"] = loaded("prometheus_client")
        response = await client.get("/metrics")
        out["content_type"] = response.headers["Content-Type"]
        out["body"] = await response.text()

asyncio.run(scrape())
out["after_metrics"] = loaded("prometheus_client")
"""


def _stable_lines(body: str) -> list[str]:
    """Every line but the process_* samples, whose values change from run to run."""
    return [ln for ln in body.splitlines() if not ln.startswith("process_")]


def test_the_router_s_app_imports_prometheus_client_at_the_first_scrape() -> None:
    out = run_probe(PROBE)
    assert not out["after_apps"]
    assert not out["after_status"]
    assert out["after_metrics"]
    eager = make_registry(FakeRouterControl(sample_report()))
    eager.register(LoopCollector(LoopMonitor()))
    body, content_type = render_metrics(FakeRouterControl(sample_report()), eager)
    assert out["content_type"] == content_type
    assert _stable_lines(out["body"]) == _stable_lines(body.decode())
    assert "# TYPE weavenet_event_loop_step_seconds histogram" in out["body"]
    assert "# TYPE process_cpu_seconds_total counter" in out["body"]


class OneGauge:
    def __init__(self, name: str) -> None:
        self.name = name

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, "A test gauge.")
        family.add_metric([], 7)
        yield family


def test_collectors_added_before_and_after_the_first_scrape_are_exported() -> None:
    metrics = MetricsRegistry(FakeRouterControl(sample_report()))
    metrics.add(lambda: OneGauge("early_gauge"))
    assert not metrics.built
    first = metrics.render()[0].decode()
    assert metrics.built
    assert "early_gauge 7\n" in first and "weave_connection_terminations_total" in first
    metrics.add(lambda: OneGauge("late_gauge"))
    second = metrics.render()[0].decode()
    assert "early_gauge 7\n" in second and "late_gauge 7\n" in second
    assert metrics.registry() is metrics.registry()  # built once


def test_each_app_has_its_own_registry() -> None:
    control = FakeRouterControl(sample_report())
    first, second = make_app(control), make_app(control)
    first[REGISTRY_KEY].add(lambda: OneGauge("only_first"))

    async def scrape(app: object) -> str:
        async with TestClient(TestServer(app)) as client:  # type: ignore[arg-type]
            return await (await client.get("/metrics")).text()

    assert "only_first 7" in asyncio.run(scrape(first))
    assert "only_first" not in asyncio.run(scrape(second))
