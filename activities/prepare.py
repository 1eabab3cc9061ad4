"""The conversion's first step, run as a local activity: record it, decide, plan.

One step instead of two activities: it reads the click and the memory of earlier
conversions from ClickHouse, decides campaign, attribution and duplicate status, writes the
conversion row (group-committed) before any send is scheduled, and plans every send from the
in-process configuration cache. Retried until it succeeds: an outage delays, never loses.
The dedup and attribution rules are relay/conversions/dedup.py's: this step gathers the
facts (the claims' holders, ClickHouse's memory, the click, its campaign) and asks it.

A conversion Relay did not accept fails it for good, before anything is read, recorded or
sent: its ID must be the one its click, event and txid make (relay/core/ids.py), and the ID of
its run. Only a start from outside Relay (whoever reaches the Temporal frontend) breaks
that; the payout and the rest of such an input are never logged.
"""

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempts import cached_click, store_call, store_submit
from activities.campaign_networks import bind_to_campaign
from relay.conversions import dedup
from relay.conversions.dedup import ConversionMemory
from relay.conversions.plan import fires_for, pixel_targets
from relay.core.ids import is_conversion_id_of
from relay.core.settings import Settings
from relay.destinations.normalize import hash_user_identifiers
from relay.domain.events import is_reversal
from relay.domain.models import Campaign, Click, Conversion
from relay.domain.workflow_io import ConversionInput, PostbackTarget, Prepared
from relay.store.click_cache import ClickCache
from relay.store.config_cache import ConfigCache, ConfigSnapshot
from relay.store.traffic import TrafficStore

NOT_ITS_ID = "conversion ID does not match its click, event and txid"
NOT_ITS_RUN = "workflow ID is not the conversion's ID"
FORGED_TYPE = "ForgedConversion"


def check_identity(pending: Conversion, workflow_id: str | None) -> None:
    """Raise a non-retryable ApplicationError (logged with the IDs only) if `pending` is
    not a conversion Relay accepted: the postback endpoint names each run by the ID its
    click, event type and txid make."""
    if not is_conversion_id_of(
        pending.conversion_id, pending.click_id, pending.event_type, pending.txid
    ):
        reason = NOT_ITS_ID
    elif workflow_id != pending.conversion_id:
        reason = NOT_ITS_RUN
    else:
        return
    activity.logger.warning(
        "refused conversion %s: %s; nothing recorded or sent", pending.conversion_id, reason
    )
    raise ApplicationError(reason, type=FORGED_TYPE, non_retryable=True)


def decide(
    input: ConversionInput,
    click: Click | None,
    campaign: Campaign | None,
    memory: ConversionMemory,
    default_currency: str,
) -> Conversion:
    """The conversion as it is recorded: campaign, currency, attribution, duplicate (and
    refusal: `dedup.judge`)."""
    pending = input.conversion
    decision = dedup.judge(input, click, campaign, memory)
    external_id = pending.external_id_sha256
    if not external_id and click is not None and click.external_id:
        external_id = hash_user_identifiers(None, None, click.external_id, None).external_id or ""
    update = {
        "campaign_id": click.campaign_id if click else "",
        "currency": pending.currency or (campaign.currency if campaign else "") or default_currency,
        "external_id_sha256": external_id,
        "attributed": decision.attributed,
        "is_duplicate": decision.is_duplicate,
    }
    if decision.refusal:
        update["refusal"] = decision.refusal
    return pending.model_copy(update=update)


def plan(conversion: Conversion, config: ConfigSnapshot, retry_window_s: int) -> Prepared:
    """Pixels: the custom conversions for this event, else the primary pixels (a reversal
    fires none). Postbacks: those listing this event, or listing none. A duplicate or an
    unattributed conversion plans nothing; `skipped` says why nothing is sent."""
    prepared = Prepared(conversion=conversion, retry_window_s=retry_window_s)
    if reason := dedup.not_delivered_because(conversion):
        prepared.skipped = reason
    if conversion.is_duplicate or not conversion.attributed:
        return prepared
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
        check_identity(pending, activity.info().workflow_id)
        window_s = int(self._settings.delivery_retry_window_h * 3600)
        rows = await store_call(self._traffic.memory_for, pending)
        memory = dedup.clickhouse_memory(pending, rows)
        earlier = dedup.earlier_record(pending, memory)
        if earlier is not None:  # a resend past Temporal's retention: handled then
            skipped = dedup.not_delivered_because(earlier, recorded_by_earlier_run=True)
            return Prepared(conversion=earlier, recorded_by_earlier_run=True, skipped=skipped)
        recorded = memory.recorded  # by this run (a retry): decided then, kept
        click = await cached_click(self._clicks, pending.click_id)
        config, campaign = await self._campaign(click, pending.received_at.timestamp())
        conversion = recorded or await bind_to_campaign(
            self._traffic,
            input,
            decide(input, click, campaign, memory, self._settings.default_currency),
            campaign,
            memory,
        )
        if recorded is None:
            run_id = activity.info().workflow_run_id or ""
            await store_submit(lambda: self._traffic.submit_conversion(conversion, run_id))
        return plan(conversion, config, window_s)
