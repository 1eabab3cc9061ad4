"""The Temporal SDK's series from its metric buffer: summed as its Prometheus exporter did,
bounded, drained on a thread, and no port listened on."""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.common import MetricAttributes
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    BufferedMetricKind,
    MetricBuffer,
)
from temporalio.runtime import Runtime as TemporalRuntime

from relay.core import sdk_metrics
from relay.core.metrics import TemporalMetrics
from relay.core.sdk_metrics import SdkMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass(frozen=True)
class FakeMetric:
    name: str
    kind: BufferedMetricKind
    description: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class FakeUpdate:
    metric: FakeMetric
    value: int | float
    attributes: MetricAttributes


REQUESTS = FakeMetric("temporal_request", BUFFERED_METRIC_KIND_COUNTER, "Count of requests")
SLOTS = FakeMetric("temporal_worker_task_slots_used", BUFFERED_METRIC_KIND_GAUGE, "Used slots")
LATENCY = FakeMetric("temporal_request_latency", BUFFERED_METRIC_KIND_HISTOGRAM, unit="s")


def samples(collector: SdkMetrics) -> tuple[Samples, dict[str, str]]:
    """Every sample of `collector`'s text, and each family's type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    found: Samples = {}
    types = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        types[family.name] = family.type
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found, types


def test_counters_sum_gauges_keep_the_last_value_histograms_count_into_buckets() -> None:
    sdk = SdkMetrics()
    shared = {"namespace": "default", "operation": "StartWorkflowExecution"}
    reordered = {"operation": "StartWorkflowExecution", "namespace": "default"}
    sdk.apply(
        [
            FakeUpdate(REQUESTS, 1, shared),
            FakeUpdate(REQUESTS, 2, shared),  # the same object again (Core reuses them)
            FakeUpdate(REQUESTS, 1, dict(shared)),  # an equal one
            FakeUpdate(REQUESTS, 1, reordered),
            FakeUpdate(REQUESTS, 5, {"operation": "GetSystemInfo", "eager": True}),
            FakeUpdate(SLOTS, 3, {"task_queue": "q"}),
            FakeUpdate(SLOTS, 1, {"task_queue": "q"}),
            *(FakeUpdate(LATENCY, v, {"operation": "Get"}) for v in (0.03, 0.1, 0.7, 20.0)),
        ]
    )
    sdk.apply([FakeUpdate(REQUESTS, 10, shared)])  # a later drain adds to the same series
    found, types = samples(sdk)

    start = (("namespace", "default"), ("operation", "StartWorkflowExecution"))
    assert found[("temporal_request_total", start)] == 15
    system = (("eager", "true"), ("operation", "GetSystemInfo"))
    assert found[("temporal_request_total", system)] == 5
    assert found[("temporal_worker_task_slots_used", (("task_queue", "q"),))] == 1
    assert types == {
        "temporal_request": "counter",
        "temporal_worker_task_slots_used": "gauge",
        "temporal_request_latency": "histogram",
    }
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in found.items()
        if name == "temporal_request_latency_bucket"
    }  # Core's default buckets, `le` written as Core wrote it
    assert buckets == {"0.05": 1, "0.1": 2, "0.5": 2, "1": 3, "2.5": 3, "10": 3, "+Inf": 4}
    get = (("operation", "Get"),)
    assert found[("temporal_request_latency_count", get)] == 4
    assert found[("temporal_request_latency_sum", get)] == pytest.approx(20.83)


def test_series_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_SERIES label sets, updates with a new one are dropped; known ones count."""
    monkeypatch.setattr(sdk_metrics, "MAX_SERIES", 2)
    sdk = SdkMetrics()
    sdk.apply([FakeUpdate(REQUESTS, 1, {"operation": op}) for op in ("a", "b", "c", "a")])
    found, _ = samples(sdk)
    totals = {labels: v for (name, labels), v in found.items() if name.endswith("_total")}
    assert totals == {(("operation", "a"),): 2, (("operation", "b"),): 1}
    assert sdk.label_sets == 2


def test_buckets_follow_core_defaults() -> None:
    assert sdk_metrics.buckets_for("temporal_request_latency") == (0.05, 0.1, 0.5, 1, 2.5, 10)
    assert sdk_metrics.buckets_for("temporal_workflow_endtoend_latency")[-1] == 86400
    assert sdk_metrics.buckets_for("temporal_activity_execution_latency")[-1] == 60


def _listening_sockets() -> set[str]:
    """Inodes of the TCP sockets this process listens on (state 0A in /proc/net/tcp*)."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A":
                listening.add(fields[9])
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            mine.add(target[len("socket:[") : -1])
    return listening & mine


def test_runtime_listens_on_no_port_and_drains_on_its_own() -> None:
    """Relay's runtime records into a buffer (no exporter, so no unauthenticated port), and
    the drain thread takes updates without a scrape."""
    before = _listening_sockets()
    temporal = TemporalMetrics()
    runtime = temporal.get_runtime()
    try:
        assert temporal.get_runtime() is runtime
        assert isinstance(temporal.sdk.telemetry().metrics, MetricBuffer)
        assert _listening_sockets() == before

        temporal.sdk.drain_interval_s = 0.02  # the thread reads it on each wait
        runtime.metric_meter.create_counter("relay_test_updates").add(3, {"task_queue": "q"})
        deadline = time.monotonic() + 5
        while temporal.sdk.label_sets == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert temporal.sdk.label_sets == 1  # drained by the thread, not by a scrape
        found, _ = samples(temporal.sdk)
        updates = {k: v for k, v in found.items() if k[0] == "relay_test_updates_total"}
        assert list(updates.values()) == [3]
    finally:
        temporal.sdk.stop()


def test_the_buffer_cannot_be_read_before_the_runtime_exists() -> None:
    """A scrape before any Temporal connection: no SDK series and no error."""
    sdk = SdkMetrics()
    assert samples(sdk) == ({}, {})
    TemporalRuntime(telemetry=sdk.telemetry())
    assert samples(sdk) == ({}, {})  # not started: nothing drained yet
