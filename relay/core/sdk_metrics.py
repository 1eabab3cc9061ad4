"""The Temporal SDK's series, from its metric buffer: no listener, no HTTP.

Core (Rust) records its metrics into a `MetricBuffer`; `SdkMetrics` drains it (on each
scrape and every `DRAIN_INTERVAL_S` on a daemon thread, so it never fills between scrapes)
and sums the updates into the series the SDK's Prometheus exporter wrote before
(`counters_total_suffix`, `durations_as_seconds`, its default buckets): counters
`temporal_*_total`, gauges (last value), histograms in seconds. Labels are the updates'
attributes (`service_name`, `namespace`, `task_queue`, `operation`, workflow and activity
types, ...): few sets, and at most `MAX_SERIES` series are kept.

An update costs a few dictionary lookups and an add (a bisection more for a histogram):
its metric is found by identity (Core hands out one object per metric), its series by the
attributes' identity when Core reused the object (gauges, pollers, slots: most updates),
else by their items (requests and tasks get a new object each time). Measured: 0.6 to
0.8 µs per update, and as much again in the SDK's `retrieve_updates`; a conversion's
workflow and activity make some 50 updates.
"""

import logging
import threading
from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from temporalio.common import MetricAttributes
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BufferedMetric,
    BufferedMetricKind,
    BufferedMetricUpdate,
    MetricBuffer,
    MetricBufferDurationFormat,
    TelemetryConfig,
)

log = logging.getLogger(__name__)

BUFFER_SIZE = 50_000  # updates held between drains; Core drops (and logs) past this
DRAIN_INTERVAL_S = 1.0
MAX_SERIES = 10_000  # label sets kept over all SDK metrics; new ones past this are dropped
_IDENTITY_CACHE_MAX = 64  # attribute objects held per metric (then forgotten, all at once)

# Core's default buckets for its Prometheus exporter (durations in seconds), by metric name
# without the `temporal_` prefix; every other histogram takes `_DEFAULT_BUCKETS`.
_DEFAULT_BUCKETS = (0.05, 0.1, 0.5, 1.0, 2.5, 10.0)
_TASK_BUCKETS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
_SCHEDULE_TO_START_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 100.0, 1000.0)
_BUCKETS: dict[str, tuple[float, ...]] = {
    "workflow_endtoend_latency": (
        0.1, 0.5, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
        3600.0, 30600.0, 86400.0,
    ),
    "workflow_task_execution_latency": _TASK_BUCKETS,
    "workflow_task_replay_latency": _TASK_BUCKETS,
    "workflow_task_schedule_to_start_latency": _SCHEDULE_TO_START_BUCKETS,
    "activity_schedule_to_start_latency": _SCHEDULE_TO_START_BUCKETS,
    "activity_execution_latency": (0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0),
}  # fmt: skip

Labels = tuple[tuple[str, str], ...]


def buckets_for(name: str) -> tuple[float, ...]:
    """Upper bounds (seconds, +Inf implied) of the histogram `name`, as Core's exporter."""
    return _BUCKETS.get(name.removeprefix("temporal_"), _DEFAULT_BUCKETS)


def _le(bound: float) -> str:
    """As Core's exporter wrote it: `1`, not `1.0`."""
    return str(int(bound)) if bound.is_integer() else repr(bound)


def _label(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Family:
    """One metric's series: label set -> values. A counter's or gauge's values are
    `[value]`, a histogram's `[sum, count, per-bucket counts (not cumulative)..., +Inf]`."""

    __slots__ = ("bounds", "by_identity", "by_items", "doc", "kind", "name", "series")

    def __init__(self, name: str, doc: str, kind: BufferedMetricKind) -> None:
        self.name = name
        self.doc = doc
        self.kind = kind
        self.bounds = buckets_for(name)
        self.series: dict[Labels, list[float]] = {}
        # tuple(attributes.items()) (Core's order, raw values) -> the values in `series`
        self.by_items: dict[tuple[tuple[str, object], ...], list[float]] = {}
        # id(attributes) -> (attributes, values): holding the object keeps its id unique
        self.by_identity: dict[int, tuple[MetricAttributes, list[float]]] = {}

    def empty_values(self) -> list[float]:
        if self.kind in (BUFFERED_METRIC_KIND_COUNTER, BUFFERED_METRIC_KIND_GAUGE):
            return [0.0]
        return [0.0] * (len(self.bounds) + 3)

    def metric(self) -> Metric:
        if self.kind == BUFFERED_METRIC_KIND_COUNTER:
            family = Metric(self.name, self.doc, "counter")
            for labels, values in self.series.items():
                family.add_sample(self.name + "_total", dict(labels), values[0])
        elif self.kind == BUFFERED_METRIC_KIND_GAUGE:
            family = Metric(self.name, self.doc, "gauge")
            for labels, values in self.series.items():
                family.add_sample(self.name, dict(labels), values[0])
        else:
            family = Metric(self.name, self.doc, "histogram")
            bounds = [*map(_le, self.bounds), "+Inf"]
            for labels, values in self.series.items():
                cumulative = 0.0
                for le, count in zip(bounds, values[2:], strict=True):
                    cumulative += count
                    family.add_sample(self.name + "_bucket", {**dict(labels), "le": le}, cumulative)
                family.add_sample(self.name + "_count", dict(labels), values[1])
                family.add_sample(self.name + "_sum", dict(labels), values[0])
        return family


class SdkMetrics(Collector):
    """The SDK's metric buffer (`telemetry()` for the runtime), drained and summed into
    Prometheus series (`collect`). `start()` once the runtime exists: before, there is
    nothing to drain. Thread-safe: one lock around every drain and every read."""

    def __init__(
        self, buffer_size: int = BUFFER_SIZE, drain_interval_s: float = DRAIN_INTERVAL_S
    ) -> None:
        self.buffer = MetricBuffer(buffer_size, MetricBufferDurationFormat.SECONDS)
        self.drain_interval_s = drain_interval_s
        self.label_sets = 0  # keys of every family's `by_items`, at most MAX_SERIES
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._by_metric: dict[int, tuple[BufferedMetric, _Family]] = {}
        self._started = False
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_full = False

    def telemetry(self) -> TelemetryConfig:
        """The runtime's telemetry: metrics into this buffer, Core's logs as by default."""
        return TelemetryConfig(metrics=self.buffer)

    def start(self) -> None:
        """Drain from now on: on each `collect` and every `drain_interval_s` (a daemon
        thread). Call once, after the runtime built from `telemetry()` exists."""
        if self._started:
            return
        self._started = True
        self._thread = threading.Thread(
            target=self._drain_regularly, name="temporal-metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the periodic drain (scrapes still drain)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _drain_regularly(self) -> None:
        while not self._stopped.wait(self.drain_interval_s):
            try:
                self.drain()
            except Exception:  # keep draining: a full buffer loses updates
                log.exception("Draining the Temporal SDK's metrics failed")

    def drain(self) -> None:
        """Take the updates buffered since the last drain into the series."""
        if not self._started:
            return
        with self._lock:
            self._apply(self.buffer.retrieve_updates())

    def apply(self, updates: Iterable[BufferedMetricUpdate]) -> None:
        """Add `updates` to the series (what `drain` does with the buffer's)."""
        with self._lock:
            self._apply(updates)

    def _apply(self, updates: Iterable[BufferedMetricUpdate]) -> None:
        by_metric = self._by_metric
        for update in updates:
            metric = update.metric
            known = by_metric.get(id(metric))
            family = known[1] if known is not None and known[0] is metric else self._family(metric)
            attributes = update.attributes
            cached = family.by_identity.get(id(attributes))
            if cached is not None and cached[0] is attributes:
                values = cached[1]
            else:
                found = family.by_items.get(tuple(attributes.items())) or self._series(
                    family, attributes
                )
                if found is None:
                    continue
                values = found
                if len(family.by_identity) >= _IDENTITY_CACHE_MAX:
                    family.by_identity.clear()
                family.by_identity[id(attributes)] = (attributes, values)
            kind = family.kind
            if kind == BUFFERED_METRIC_KIND_COUNTER:
                values[0] += update.value
            elif kind == BUFFERED_METRIC_KIND_GAUGE:
                values[0] = update.value
            else:
                value = update.value
                values[0] += value
                values[1] += 1
                values[2 + bisect_left(family.bounds, value)] += 1

    def _family(self, metric: BufferedMetric) -> _Family:
        family = self._families.get(metric.name)
        if family is None:
            family = _Family(metric.name, metric.description or metric.name, metric.kind)
            self._families[metric.name] = family
        if len(self._by_metric) >= 4 * len(self._families) + 64:  # Core keeps one per metric
            self._by_metric.clear()
        self._by_metric[id(metric)] = (metric, family)
        return family

    def _series(self, family: _Family, attributes: MetricAttributes) -> list[float] | None:
        """The values of `attributes`' label set (new ones), None past `MAX_SERIES`."""
        if self.label_sets >= MAX_SERIES:
            if not self._warned_full:
                self._warned_full = True
                log.warning("Temporal SDK metrics: over %d series, new ones dropped", MAX_SERIES)
            return None
        labels = tuple(sorted((key, _label(value)) for key, value in attributes.items()))
        values = family.series.get(labels)  # the same labels in another order
        if values is None:
            values = family.series[labels] = family.empty_values()
        family.by_items[tuple(attributes.items())] = values
        self.label_sets += 1
        return values

    def collect(self) -> list[Metric]:
        try:
            self.drain()
        except Exception:  # the series as of the last drain, rather than no /metrics
            log.exception("Draining the Temporal SDK's metrics failed")
        with self._lock:
            return [family.metric() for family in self._families.values()]
