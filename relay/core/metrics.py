"""Relay's Prometheus series and the text `/metrics` answers.

Three sources, one text: Relay's own series (counted here with prometheus_client), the
process's (CPU, memory, GC) and the Temporal SDK's. The SDK's Core runtime records its
metrics into a buffer this process drains and sums (relay/core/sdk_metrics.py: no listener of
its own), so a scraper reads one endpoint.

Counting on the postback path is one increment of a pre-bound child (a lock and an add).
`relay_part_ready{part}` is read from the process's parts registry at scrape time.
"""

from dataclasses import dataclass

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
from temporalio.runtime import Runtime as TemporalRuntime

from relay.core.sdk_metrics import SdkMetrics
from relay.core.supervision import PARTS, Parts

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


AUTH_FAILURES = Counter(
    "relay_auth_failures",
    "Wrong credentials presented, by what they were for (sign_in, bearer, codec, "
    "postback_key) and the answer (401, or 429 past RELAY_AUTH_FAILURE_LIMIT).",
    ["credential", "status"],
    registry=REGISTRY,
)


def auth_failed(credential: str, status: int) -> None:
    """A wrong credential answered `status` (401, or 429 once its address is limited)."""
    AUTH_FAILURES.labels(credential, str(status)).inc()


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


class TemporalMetrics:
    """The process's Temporal Core runtime, its metrics kept in `sdk` (no port)."""

    def __init__(self) -> None:
        self.runtime: TemporalRuntime | None = None
        self.sdk = SdkMetrics()

    def get_runtime(self) -> TemporalRuntime:
        """Created on first use, with `sdk`'s buffer, which drains from then on."""
        if self.runtime is None:
            self.runtime = TemporalRuntime(telemetry=self.sdk.telemetry())
            self.sdk.start()
        return self.runtime


TEMPORAL = TemporalMetrics()


async def render(state: ProcessState) -> bytes:
    """The whole `/metrics` text: Relay's and the process's series, then the SDK's."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_StateCollector(state))
    scrape.register(TEMPORAL.sdk)
    return generate_latest(REGISTRY) + generate_latest(scrape)
