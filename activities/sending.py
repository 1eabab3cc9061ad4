"""One send, the same for every destination (relay/destinations/base.py): refuse an event
older than the destination accepts, add the secret, send, classify the answer.

The pixel and postback activities (activities/pixel_sends.py, activities/postback_sends.py)
load what differs (the configuration, the secret, the attempt row's fields) and call
`too_old` and `exchange`; everything that decides a verdict is the destination's.
"""

import codecs
import time
from datetime import timedelta
from typing import TypeVar

import httpx

from activities.attempts import AttemptOutcome
from relay.core.settings import Settings
from relay.destinations.base import REDACTED, Destination, Outgoing
from relay.destinations.classify import Classification
from relay.destinations.facts import SendFacts
from relay.domain.delivery_states import NOT_SENDABLE_REASON
from relay.domain.models import Verdict

C = TypeVar("C")
# Read at most this much of an answer: enough for any platform's JSON, and the log keeps
# only its first 8 KiB (activities.attempts.bounded); a huge answer costs nothing more.
ANSWER_LIMIT = 64 * 1024


def too_old(
    destination: Destination[C], facts: SendFacts, settings: Settings, now: int
) -> Classification | None:
    """A permanent "not sendable" verdict when the event is older than the destination
    takes (its own limit, or RELAY_MAX_EVENT_AGE_DAYS if shorter), else None."""
    if destination.max_event_age is None:
        return None
    limit = min(destination.max_event_age, timedelta(days=settings.max_event_age_days))
    if now - facts.event_time <= limit.total_seconds():
        return None
    days = f"{limit.total_seconds() / 86_400:g}"
    reason = f"{NOT_SENDABLE_REASON}: older than the platform's {days}-day limit"
    return Classification(Verdict.PERMANENT, reason, None)


async def exchange(
    destination: Destination[C],
    client: httpx.AsyncClient,
    outgoing: Outgoing,
    secret: str,
    notes: list[str],
) -> AttemptOutcome:
    """Send `outgoing` with `secret` added, read the start of the answer and classify it.

    The secret is removed from the answer before anything reads it (a platform may echo
    a token in an error; reasons are cut short, and a cut token would not be found)."""
    sent = destination.authorize(outgoing, secret)
    started = time.monotonic()
    try:
        async with client.stream(
            sent.method, sent.url, json=sent.json, headers=sent.headers
        ) as response:
            content, truncated = await _read_start(response)
    except destination.transport_errors as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        return AttemptOutcome(destination.classify_failure(exc), elapsed, notes=notes)
    elapsed = int((time.monotonic() - started) * 1000)
    if secret:
        content = content.replace(secret.encode(), REDACTED.encode())
    # Incremental: a character cut at the limit is left out rather than garbled.
    decoder = codecs.getincrementaldecoder(response.encoding or "utf-8")(errors="replace")
    verdict = destination.classify(response.status_code, content, response.headers)
    text = decoder.decode(content)
    return AttemptOutcome(verdict, elapsed, response.status_code, text, notes, truncated)


async def _read_start(response: httpx.Response) -> tuple[bytes, bool]:
    """At most ANSWER_LIMIT bytes of the answer, and whether more followed (never read)."""
    kept = bytearray()
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) > ANSWER_LIMIT:
            break
    return bytes(kept[:ANSWER_LIMIT]), len(kept) > ANSWER_LIMIT
