"""The conversion's first step, run as a local activity: record it, decide, plan.

One step instead of two activities: it reads the click and the memory of earlier
conversions from ClickHouse, decides campaign, attribution and duplicate status, writes the
conversion row (group-committed) before any send is scheduled, and plans every send from the
in-process configuration cache. Retried until it succeeds: an outage delays, never loses.
"""

from datetime import timedelta

from temporalio import activity

from activities.attempts import cached_click, store_call, store_submit
from activities.conversions import fires_for, pixel_targets
from relay.config_cache import ConfigCache, ConfigSnapshot
from relay.models import Campaign, Click, Conversion
from relay.platforms.event_names import is_reversal
from relay.platforms.normalize import hash_user_identifiers
from relay.settings import Settings
from relay.store.click_cache import ClickCache
from relay.store.traffic import ConversionMemory, TrafficStore
from relay.workflow_io import ConversionInput, PostbackTarget, Prepared

EARLIER_RUN = "recorded by an earlier run; not delivered again"


def decide(
    input: ConversionInput,
    click: Click | None,
    campaign: Campaign | None,
    memory: ConversionMemory,
    default_currency: str,
) -> Conversion:
    """The conversion as it is recorded: campaign, currency, attribution, duplicate."""
    pending = input.conversion
    me, event = pending.conversion_id, pending.event_type
    attributed = (
        click is not None
        and campaign is not None
        and pending.received_at - click.clicked_at
        <= timedelta(days=campaign.attribution_window_days)
    )
    # A transaction ID already counted (by another replica, or past the inbox's memory).
    resent = input.txid_holder not in ("", me) or memory.same_txid is not None
    repeatable = campaign is not None and event in campaign.repeatable_events
    second = input.claim_holder not in ("", me) or memory.original is not None
    duplicate = resent or (attributed and not is_reversal(event) and not repeatable and second)
    external_id = pending.external_id_sha256
    if not external_id and click is not None and click.external_id:
        external_id = hash_user_identifiers(None, None, click.external_id, None).external_id or ""
    return pending.model_copy(
        update={
            "campaign_id": click.campaign_id if click else "",
            "currency": pending.currency
            or (campaign.currency if campaign else "")
            or default_currency,
            "external_id_sha256": external_id,
            "attributed": attributed,
            "is_duplicate": duplicate,
        }
    )


def plan(conversion: Conversion, config: ConfigSnapshot, retry_window_s: int) -> Prepared:
    """Pixels: the custom conversions for this event, else the primary pixels (a reversal
    fires none). Postbacks: those listing this event, or listing none."""
    prepared = Prepared(conversion=conversion, retry_window_s=retry_window_s)
    if conversion.is_duplicate:
        prepared.skipped = "duplicate of an earlier conversion for this click and event"
    elif not conversion.attributed:
        prepared.skipped = "unattributed: no click with this ID within the attribution window"
    else:
        campaign_id, event = conversion.campaign_id, conversion.event_type
        if not is_reversal(event):
            customs = config.customs.get(campaign_id, [])
            prepared.pixels = pixel_targets(config.campaign_pixels(campaign_id), customs, event)
        prepared.postbacks = [
            PostbackTarget(postback_id=p.id, method=p.method)
            for p in config.campaign_postbacks(campaign_id)
            if fires_for(p, event)
        ]
    return prepared


class PrepareActivities:
    """Bound at worker start to the stores and the configuration cache."""

    def __init__(
        self, settings: Settings, traffic: TrafficStore, clicks: ClickCache, config: ConfigCache
    ) -> None:
        self._settings = settings
        self._traffic = traffic
        self._clicks = clicks
        self._config = config

    async def _campaign(
        self, click: Click | None, received_at: float
    ) -> tuple[ConfigSnapshot, Campaign | None]:
        config = await self._config.current_since(received_at)
        if click is None:
            return config, None
        campaign = config.campaigns.get(click.campaign_id)
        if campaign is None:  # created a moment ago elsewhere, or deleted
            config = await self._config.after_miss()
            campaign = config.campaigns.get(click.campaign_id)
        return config, campaign

    @activity.defn
    async def prepare_conversion(self, input: ConversionInput) -> Prepared:
        """Record the conversion once (a retry or a reset writes nothing new), then plan."""
        pending = input.conversion
        window_s = int(self._settings.delivery_retry_window_h * 3600)
        memory = await store_call(self._traffic.memory_for, pending)
        recorded = memory.recorded
        if recorded is not None and recorded.received_at != pending.received_at:
            # Written for an earlier postback of this ID (a resend past Temporal's
            # retention): that one was handled then.
            return Prepared(conversion=recorded, recorded_by_earlier_run=True, skipped=EARLIER_RUN)
        click = await cached_click(self._clicks, pending.click_id)
        config, campaign = await self._campaign(click, pending.received_at.timestamp())
        conversion = recorded or decide(
            input, click, campaign, memory, self._settings.default_currency
        )
        if recorded is None:
            run_id = activity.info().workflow_run_id or ""
            await store_submit(lambda: self._traffic.submit_conversion(conversion, run_id))
        return plan(conversion, config, window_s)
