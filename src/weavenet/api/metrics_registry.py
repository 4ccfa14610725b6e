"""The registry behind GET /metrics, built on the first scrape.

prometheus_client costs ~13 ms to import, and a router that nobody scrapes never needs
it. So the app holds a ``MetricsRegistry``: what start-up wants exported is recorded as
collector factories (plain callables that import the library themselves), and the
prometheus registry (process_*, python_info, weave_*, then those collectors, in the
order they were added) is made when /metrics is first asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from weavenet.api.control import RouterControl

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

    from weavenet.api.metrics import LoopStatsSource

CollectorFactory = Callable[[], "Collector"]


class MetricsRegistry:
    """What /metrics exports for one app: the router's report, plus added collectors."""

    def __init__(self, control: RouterControl) -> None:
        self._control = control
        self._factories: list[CollectorFactory] = []
        self._registry: CollectorRegistry | None = None

    @property
    def built(self) -> bool:
        """Whether the first scrape has made the prometheus registry yet."""
        return self._registry is not None

    def add(self, factory: CollectorFactory) -> None:
        """Export ``factory()``'s metrics too: from the first scrape on, or from now on
        when that has happened already."""
        if self._registry is not None:
            self._registry.register(factory())
        else:
            self._factories.append(factory)

    def registry(self) -> CollectorRegistry:
        """The prometheus registry, made (and prometheus_client imported) on first use."""
        if self._registry is None:
            from weavenet.api.metrics import make_registry

            registry = make_registry(self._control)
            for factory in self._factories:
                registry.register(factory())
            self._factories.clear()
            self._registry = registry
        return self._registry

    def render(self) -> tuple[bytes, str]:
        """(body, content type) for GET /metrics."""
        from weavenet.api.metrics import render_metrics

        return render_metrics(self._control, self.registry())


def loop_collector(monitor: LoopStatsSource) -> CollectorFactory:
    """A factory of the event-loop monitor's collector (weavenet_event_loop_*)."""

    def build() -> Collector:
        from weavenet.api.metrics import LoopCollector

        return LoopCollector(monitor)

    return build
