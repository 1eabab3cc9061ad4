"""The pixel send activity: load the fire's facts, send one request, log the attempt.

The access token is loaded encrypted and decrypted here, at send time, and goes only into
the outgoing request: the logged body carries a fixed marker instead.
"""

import json
import time
import uuid
from datetime import timedelta

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
from relay.core.crypto import KeyRing
from relay.core.settings import Settings
from relay.destinations.classify import (
    Classification,
    classify_meta,
    classify_tiktok,
    classify_transport_error,
)
from relay.destinations.facts import EventFacts, UserHashes
from relay.destinations.meta import build_meta_body, meta_events_path
from relay.destinations.postback import REDACTED
from relay.destinations.tiktok import build_tiktok_body, tiktok_path
from relay.domain.delivery_states import NOT_SENDABLE_REASON
from relay.domain.models import Click, Conversion, Pixel, PixelFire, Platform, Verdict
from relay.domain.workflow_io import SendPixelInput, SendPixelResult
from relay.store.attempt_log import AttemptLog
from relay.store.click_cache import ClickCache
from relay.store.config_cache import ConfigCache
from relay.store.rows import utc_now
from relay.store.traffic import TrafficStore


def event_facts(
    conversion: Conversion, click: Click | None, pixel: Pixel, event_name: str, event_time: int
) -> EventFacts:
    """Join what the conversion, its click and the pixel know into one platform-neutral fact set."""
    c = click
    return EventFacts(
        pixel_id=pixel.platform_pixel_id,
        event_name=event_name,
        event_id=conversion.conversion_id,
        event_time=event_time,
        currency=conversion.currency,
        value=conversion.payout,
        order_id=conversion.conversion_id,
        event_source_url=(c.landing_url or None) if c else None,
        referrer_url=(c.referrer or None) if c else None,
        client_ip=(c.ip or None) if c else None,
        user_agent=(c.user_agent or None) if c else None,
        fbclid=(c.fbclid or None) if c else None,
        fbc=(c.fbc or None) if c else None,
        fbp=(c.fbp or None) if c else None,
        ttclid=(c.ttclid or None) if c else None,
        ttp=(c.ttp or None) if c else None,
        click_time_ms=int(c.clicked_at.timestamp() * 1000) if c else None,
        country=(c.country or None) if c else None,
        region=(c.region or None) if c else None,
        city=(c.city or None) if c else None,
        zip_code=(c.zip_code or None) if c else None,
        user=UserHashes(
            email=conversion.email_sha256 or None,
            phone_meta=conversion.phone_meta_sha256 or None,
            phone_tiktok=conversion.phone_tiktok_sha256 or None,
            external_id=conversion.external_id_sha256 or None,
        ),
        test_event_code=pixel.test_event_code,
        tiktok_api=pixel.tiktok_api,
    )


class DeliveryActivities:
    """Bound at worker start to the stores, the key ring and one pooled client per platform."""

    def __init__(
        self,
        settings: Settings,
        config: ConfigCache,
        traffic: TrafficStore,
        clicks: ClickCache,
        fire_log: AttemptLog[PixelFire],
        keys: KeyRing,
        meta_http: httpx.AsyncClient,
        tiktok_http: httpx.AsyncClient,
    ) -> None:
        self._settings = settings
        self._config = config
        self._traffic = traffic
        self._clicks = clicks
        self._fire_log = fire_log
        self._keys = keys
        self._meta_http = meta_http
        self._tiktok_http = tiktok_http

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
        now = int(time.time())
        event_time = min(int(conversion.received_at.timestamp()), now)
        builder = build_meta_body if pixel.platform == Platform.META else build_tiktok_body
        facts = event_facts(conversion, click, pixel, input.target.event_name, event_time)
        body, dropped = builder(facts)
        notes = [f"dropped {d}" for d in [*conversion.pii_dropped, *dropped]]
        if now - event_time > timedelta(days=self._settings.max_event_age_days).total_seconds():
            verdict = Classification(
                Verdict.PERMANENT,
                f"{NOT_SENDABLE_REASON}: older than the "
                f"platform's {self._settings.max_event_age_days}-day limit",
                None,
            )
            return AttemptOutcome(verdict, notes=notes)
        started = time.monotonic()
        status, response_text, classification = await self._post(pixel, body, token, log)
        elapsed = int((time.monotonic() - started) * 1000)
        return AttemptOutcome(classification, elapsed, status, response_text, notes)

    async def _post(
        self, pixel: Pixel, body: dict[str, object], token: str, log: PixelFire
    ) -> tuple[int | None, str, Classification]:
        if pixel.platform == Platform.META:
            path = meta_events_path(self._settings.meta_api_version, pixel.platform_pixel_id)
            client, sent, headers = self._meta_http, {**body, "access_token": token}, {}
            logged = {**body, "access_token": REDACTED}
            classify = classify_meta
        else:
            path = tiktok_path(pixel.tiktok_api)
            client, sent, headers = self._tiktok_http, body, {"Access-Token": token}
            logged = body
            classify = classify_tiktok
        log.request_url = str(client.base_url.join(path))
        log.request_body = json.dumps(logged, separators=(",", ":"), sort_keys=True)
        try:
            response = await client.post(path, json=sent, headers=headers)
        except httpx.HTTPError as exc:
            return None, "", classify_transport_error(exc)
        # A platform may echo the token in an error; remove it before anything reads the
        # body, since reasons are cut short and a cut token would no longer be found.
        content = response.content.replace(token.encode(), REDACTED.encode())
        return (
            response.status_code,
            content.decode(response.encoding or "utf-8", errors="replace"),
            classify(response.status_code, content, response.headers),
        )
