"""What several test modules share and no service helper owns: waiting on a condition, the
full set of event facts the payload builders are tested with, Prometheus text parsed into
samples, and the inbox's candidates with a recording stand-in for Temporal's starts."""

import asyncio
import inspect
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from relay.destinations.facts import EventFacts
from relay.destinations.normalize import hash_user_identifiers
from relay.domain.personal_data import CLICK_FIELDS
from relay.ingest.inbox import Candidate, PendingEntry


async def until(check: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll `check` (a function, or one returning an awaitable) until it is true; fail
    naming `what` once `timeout_s` has passed. A test waits on what it needs, never for a
    guessed while."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = check()
        if inspect.isawaitable(done):
            done = await done
        if done:
            return
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        await asyncio.sleep(0.05)


# A visitor's identifiers as a postback carries them, and the hashes the builders send.
EMAIL, PHONE = "Joe.Buyer@Example.com", "+1 (650) 555-1212"
FBCLID = "IwAR2xYz-AbC_def"  # case and '-'/'_' must survive untouched
USER = hash_user_identifiers(EMAIL, PHONE, "User-123", "US")

# Every field a Meta or TikTok event can carry, set.
FULL = EventFacts(
    pixel_id="1234567890",
    event_name="Purchase",
    event_id="conv_AbCdEfGhIjKlMnOpQrStUvWx",
    event_time=1764403200,
    currency="usd",
    value=Decimal("12.50"),
    order_id="conv_AbCdEfGhIjKlMnOpQrStUvWx",
    event_source_url="https://shop.example/landing?x=1",
    referrer_url="https://ads.example/",
    client_ip="203.0.113.9",
    user_agent="Mozilla/5.0 (X11; Linux x86_64)",
    fbclid=FBCLID,
    fbp="fb.1.1596403881668.1116446470",
    ttclid="E.C.P.abcDEF",
    ttp="ttp-cookie-value",
    click_time_ms=1764403100123,
    country="US",
    region="California",
    city="Menlo Park",
    zip_code="98121-4892",
    user=USER,
)

# Prometheus samples by (name, sorted labels).
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much one series grew between two scrapes (a missing series counts as 0)."""
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@dataclass
class Starts:
    """Temporal's stand-in: records each start; raises for IDs in `failing`."""

    seen: Counter[str] = field(default_factory=Counter)
    failing: set[str] = field(default_factory=set)
    refused: int = 0

    async def __call__(self, entry: PendingEntry) -> None:
        if entry.conversion_id in self.failing:
            self.refused += 1
            raise RuntimeError(f"Temporal refused {entry.conversion_id} (simulated)")
        self.seen[entry.conversion_id] += 1


def candidate(conversion_id: str) -> Candidate:
    return Candidate(
        conversion_id=conversion_id,
        network_id="net_faults",
        click_id=f"click_{conversion_id}",
        event_type="sale",
        txid="",
        claims_click=True,
        body="{}",
    )


def workflow_type(history: Path) -> str:
    """The workflow type of a recorded history file (tests/histories)."""
    started = json.loads(history.read_text())["events"][0]
    return str(started["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])


# A click's personal fields once blanked (retention, erasure): text empty, no click IDs.
BLANK_CLICK: dict[str, object] = dict.fromkeys(CLICK_FIELDS, "") | {"click_ids": {}}
