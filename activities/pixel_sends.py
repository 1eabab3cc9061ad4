"""The pixel send activity, for every ad platform: load the fire's facts, send one
request through the platform's destination (activities/sending.py), log the attempt.

The access token is loaded encrypted and decrypted here, at send time, and goes only into
the outgoing request: the logged body carries a fixed marker instead.
"""

import time
import uuid
from collections.abc import Mapping

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempts import (
    AttemptOutcome,
    attempt_outcome,
    cached_click,
    cached_pixel,
    log_attempt,
    store_call,
    unfinished_row,
)
from activities.sending import exchange, too_old
from relay.core.crypto import KeyRing
from relay.core.settings import Settings
from relay.destinations import registry
from relay.destinations.facts import SendFacts
from relay.domain.models import Click, Conversion, Pixel, PixelFire, Platform
from relay.domain.workflow_io import SendPixelInput, SendPixelResult
from relay.store.attempt_log import AttemptLog
from relay.store.click_cache import ClickCache
from relay.store.config_cache import ConfigCache
from relay.store.rows import utc_now
from relay.store.traffic import TrafficStore


class DeliveryActivities:
    """Bound at worker start to the stores, the key ring and one pooled client per platform
    (relay/destinations/registry.py)."""

    def __init__(
        self,
        settings: Settings,
        config: ConfigCache,
        traffic: TrafficStore,
        clicks: ClickCache,
        fire_log: AttemptLog[PixelFire],
        keys: KeyRing,
        clients: Mapping[Platform, httpx.AsyncClient],
    ) -> None:
        self._settings = settings
        self._config = config
        self._traffic = traffic
        self._clicks = clicks
        self._fire_log = fire_log
        self._keys = keys
        self._clients = clients

    async def _load(self, input: SendPixelInput) -> tuple[Conversion, Click | None, Pixel, str]:
        """The planned conversion (read from ClickHouse only for runs that predate the
        plan carrying it), its click (usually from memory), the pixel and its token from
        the configuration cache."""
        conversion = input.conversion or await store_call(
            self._traffic.get_conversion, input.conversion_id
        )
        if conversion is None:
            # Persist ran before this activity was scheduled, so this is a store glitch.
            raise ApplicationError(f"conversion {input.conversion_id} not readable yet")
        pixel, sealed = await cached_pixel(self._config, input.target.pixel_id)
        click = await cached_click(self._clicks, conversion.click_id)
        return conversion, click, pixel, self._keys.decrypt(sealed, pixel.id)

    @activity.defn
    async def send_pixel_event(self, input: SendPixelInput) -> SendPixelResult:
        """One attempt at delivering one conversion to one pixel; raises to retry or fail.

        The attempt's row is written however it ends: a pixel deleted since the plan, a
        token that cannot be decrypted or sent, any unexpected error."""
        target = input.target
        log = PixelFire(
            **unfinished_row(input.conversion_id, input.conversion, input.attempt_offset),
            fire_id=str(uuid.uuid4()),
            pixel_id=target.pixel_id,
            platform=target.platform,
            pixel_name=target.pixel_name,
            event_name=target.event_name,
            event_id=input.conversion_id,
            request_url="",
            fired_at=utc_now(),
        )
        outcome = await attempt_outcome(self._attempt(input, log))
        unlogged = await log_attempt(
            log, self._fire_log, outcome, log.platform.value, self._settings.retry_delay_cap_s
        )
        return SendPixelResult(http_status=outcome.status, attempt=log.attempt, unlogged=unlogged)

    async def _attempt(self, input: SendPixelInput, log: PixelFire) -> AttemptOutcome:
        conversion, click, pixel, token = await self._load(input)
        log.campaign_id, log.pixel_name = conversion.campaign_id, pixel.name
        destination = registry.platform(pixel.platform)
        now = int(time.time())
        event_time = min(int(conversion.received_at.timestamp()), now)
        facts = SendFacts(conversion, click, input.target.event_name, event_time)
        outgoing = destination.build(facts, pixel, self._settings)
        notes = [f"dropped {d}" for d in outgoing.dropped]
        refusal = too_old(destination, facts, self._settings, now)
        if refusal is not None:
            return AttemptOutcome(refusal, notes=notes)
        client = self._clients[pixel.platform]
        log.request_url = str(client.base_url.join(outgoing.url))
        log.request_body = outgoing.logged_body
        return await exchange(destination, client, outgoing, token, notes)
