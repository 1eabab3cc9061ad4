"""Relay's Prometheus series and the text `/metrics` answers.

Three sources, one text: Relay's own series (counted here with prometheus_client), the
process's (CPU, memory, GC) and the Temporal SDK's. The SDK's Core runtime exports its
metrics in Prometheus format on a loopback port of its own (Rust, no Python on any hot
path); `/metrics` fetches that text and appends it, so a scraper reads one endpoint.

Counting on the postback path is one increment of a pre-bound child (a lock and an add).
`relay_part_ready{part}` is read from the process's parts registry at scrape time.
"""

import logging
import socket
from dataclasses import dataclass

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig, TelemetryConfig
from temporalio.runtime import Runtime as TemporalRuntime

from relay.supervision import PARTS, Parts

log = logging.getLogger(__name__)

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

POSTBACKS = Counter(
    "relay_postbacks",
    "Postbacks answered: accepted (new), existing (already had), refused (by HTTP status).",
    ["outcome", "status"],
    registry=REGISTRY,
)
POSTBACK_ACCEPTED = POSTBACKS.labels("accepted", "200")
POSTBACK_EXISTING = POSTBACKS.labels("existing", "200")

ATTEMPTS = Counter(
    "relay_delivery_attempts",
    "Delivery attempts by destination (meta, tiktok: pixel fires; postback: outbound "
    "postbacks) and verdict (delivered, retryable, permanent).",
    ["destination", "verdict"],
    registry=REGISTRY,
)
ATTEMPT_SECONDS = Histogram(
    "relay_delivery_attempt_duration_seconds",
    "How long a delivery attempt's request took, by destination (attempts that sent "
    "nothing, such as a conversion too old to send, are not observed).",
    ["destination"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)


def postback_refused(status: int) -> None:
    """A postback answered with an error status (not on the accepting path: refusals only)."""
    POSTBACKS.labels("refused", str(status)).inc()


def attempt_finished(destination: str, verdict: str, elapsed_ms: int, sent: bool) -> None:
    ATTEMPTS.labels(destination, verdict).inc()
    if sent:
        ATTEMPT_SECONDS.labels(destination).observe(elapsed_ms / 1000)


@dataclass(frozen=True)
class ProcessState:
    """Gauges read at scrape time from this process's runtime."""

    config_cache_age_s: float | None = None  # None: no snapshot loaded yet
    inbox_depth: int | None = None  # None: no inbox in this process (a worker)
    inbox_capacity: int | None = None
    inbox_oldest_age_s: float | None = None
    postbacks_in_flight: int | None = None


class _StateCollector(Collector):
    def __init__(self, state: ProcessState) -> None:
        self.state = state

    def collect(self) -> list[Metric]:
        s = self.state
        gauges = [
            ("relay_config_cache_age_seconds", "Seconds since the configuration cache was "
             "last confirmed current.", s.config_cache_age_s),
            ("relay_inbox_depth", "Postbacks in the inbox not yet forwarded to Temporal.",
             s.inbox_depth),
            ("relay_inbox_capacity", "The inbox's capacity (RELAY_INBOX_CAPACITY).",
             s.inbox_capacity),
            ("relay_inbox_oldest_age_seconds", "Age of the oldest postback waiting in the "
             "inbox (0 when it is empty).", s.inbox_oldest_age_s),
            ("relay_postbacks_in_flight", "Postbacks being accepted right now.",
             s.postbacks_in_flight),
        ]  # fmt: skip
        return [GaugeMetricFamily(name, doc, value=v) for name, doc, v in gauges if v is not None]


class PartsCollector(Collector):
    """`relay_part_ready{part}`: 1 while a background part makes progress, 0 while stuck
    (its reason is on /readyz), for every part that reports in this process."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    def collect(self) -> list[Metric]:
        family = GaugeMetricFamily(
            "relay_part_ready",
            "1 while a background part (forwarder, inbox, batch writers) makes progress, 0 "
            "while it is stuck; /readyz names the reason.",
            labels=["part"],
        )
        for state in self.parts.states():
            family.add_metric([state.name], 1.0 if state.ready else 0.0)
        return [family]


REGISTRY.register(PartsCollector(PARTS))


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TemporalMetrics:
    """The process's Temporal Core runtime, exporting on a free loopback port."""

    def __init__(self) -> None:
        self.runtime: TemporalRuntime | None = None
        self.url = ""

    def get_runtime(self) -> TemporalRuntime | None:
        """Created on first use; None if no port could be bound (the SDK then runs with
        its default runtime and `/metrics` lacks its series, with a warning)."""
        if self.runtime is not None:
            return self.runtime
        for _ in range(5):  # another process may take the free port before Core binds it
            port = _free_loopback_port()
            config = PrometheusConfig(
                bind_address=f"127.0.0.1:{port}",
                counters_total_suffix=True,
                durations_as_seconds=True,
            )
            try:
                self.runtime = TemporalRuntime(telemetry=TelemetryConfig(metrics=config))
            except ValueError as exc:
                log.warning("Temporal metrics exporter could not start: %s", exc)
                continue
            self.url = f"http://127.0.0.1:{port}/metrics"
            return self.runtime
        return None

    async def text(self) -> bytes:
        if not self.url:
            return b""
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                response = await client.get(self.url)
                response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("Temporal SDK metrics unavailable: %s", type(exc).__name__)
            return b""
        return response.content


TEMPORAL = TemporalMetrics()


async def render(state: ProcessState) -> bytes:
    """The whole `/metrics` text: Relay's and the process's series, then the SDK's."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_StateCollector(state))
    return generate_latest(REGISTRY) + generate_latest(scrape) + await TEMPORAL.text()
