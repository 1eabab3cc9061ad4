"""The Overview page: conversions received and how their sends ended (delivered, failed,
not sendable, per platform and for outbound postbacks) over the last 24 hours, 7 or 30 days
in the workspace's timezone, the sends being retried now, and the conversions with a send
failed for good, which one button redelivers in bulk (api/services/redeliveries.py's bulk
redelivery, as `POST /api/redeliveries` starts it); the overview then follows it."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.responses import RedirectResponse, Response

from api.deps import RuntimeDep
from api.services.campaigns import list_campaigns
from api.services.networks import list_networks
from api.services.redeliveries import (
    RedeliveriesBody,
    RedeliveryStatus,
    redeliver_many,
    redelivery_status,
    temporal_ui_link,
)
from api.services.settings import workspace_zone
from api.ui.overview_chart import SERIES_NAMES, STATE_NAMES, bucket_name, charts
from api.ui.pages import ConsoleRoute, FormDep, SessionDep, field_errors, render
from relay.core.errors import InvalidField, NotFound
from relay.domain.delivery_states import DeliveryState
from relay.domain.models import OutboundPostback
from relay.domain.redelivery import BULK_PREFIX
from relay.runtime import Runtime
from relay.store.overview import FINAL_STATES, Bucket, NeedsAttention, Overview, unit_for
from relay.store.retrying import Retrying, retrying_sends
from workflows.retry_policies import DELIVERY_MAX_INTERVAL

router = APIRouter(route_class=ConsoleRoute)

ATTENTION_LIMIT = 20
FOLLOW_EVERY_S = 2  # how often the overview reloads while its bulk redelivery runs
RUNNING = "RUNNING"  # a redelivery's status while its workflow runs (RedeliveryStatus)
# How much further back than the retry window to look for sends still retrying (a send
# starts a little after its conversion is received), and how much longer than the longest
# wait between two attempts a send being retried may have been quiet.
RETRY_MARGIN = timedelta(days=1)
QUIET_MARGIN = timedelta(minutes=15)


def retry_bounds(runtime: Runtime) -> tuple[timedelta, timedelta]:
    """Retrying now's (lookback, quiet) for this Relay's retry settings."""
    settings = runtime.settings
    longest_wait = max(DELIVERY_MAX_INTERVAL, timedelta(seconds=settings.retry_delay_cap_s))
    lookback = timedelta(hours=settings.delivery_retry_window_h) + RETRY_MARGIN
    return lookback, longest_wait + QUIET_MARGIN


RANGES = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
RangeKey = Literal["24h", "7d", "30d"]


class OverviewFilters(BaseModel):
    """The range (the last 24 hours, by hour; 7 or 30 days, by day) and a campaign."""

    model_config = ConfigDict(extra="ignore")
    range: RangeKey = "7d"
    campaign_id: Annotated[str | None, Field(max_length=200)] = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


def time_range(key: RangeKey, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """From the start of the first whole bucket to now: 24 hours from the start of the
    hour 23 hours ago, or days from local midnight (today is the last day)."""
    local = now.astimezone(zone)
    if key == "24h":
        hour = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return hour - timedelta(hours=23), now
    days = 7 if key == "7d" else 30
    first = local.date() - timedelta(days=days - 1)
    return datetime.combine(first, time(), zone), now


@dataclass(frozen=True)
class Totals:
    conversions: int
    sends: dict[str, int]  # by final state
    by_series: dict[str, dict[str, int]]  # series -> final state -> count


def totals(buckets: list[Bucket]) -> Totals:
    by_series = {
        series: {s.value: sum(b.count(series, s.value) for b in buckets) for s in FINAL_STATES}
        for series in SERIES_NAMES
    }
    sends = {s.value: sum(c[s.value] for c in by_series.values()) for s in FINAL_STATES}
    return Totals(sum(b.conversions for b in buckets), sends, by_series)


async def _send_names(
    runtime: Runtime, attention: list[NeedsAttention], retrying: Retrying
) -> dict[str, str]:
    """What a person calls each listed send: its pixel's name and platform, its outbound
    postback's method and host (the URL's query may hold a secret); else its ID."""
    names: dict[str, str] = {}
    campaigns = {a.campaign_id for a in attention} | {s.campaign_id for s in retrying.sends}
    for campaign_id in campaigns:
        for pixel in await runtime.run(runtime.config.list_pixels, campaign_id):
            names[pixel.id] = f"{pixel.name} ({SERIES_NAMES[pixel.platform.value]})"
    kinds = {f.kind for a in attention for f in a.failed} | {s.kind for s in retrying.sends}
    if "postback" in kinds:
        for postback in await runtime.run(runtime.config.find, OutboundPostback):
            host = urlsplit(postback.url_template).hostname or "?"
            names[postback.id] = f"Postback {postback.method} {host}"
    return names


@dataclass(frozen=True)
class BulkFollowed:
    """The bulk redelivery the overview follows: its status, how many conversions it was
    started with, and where else to see it."""

    status: RedeliveryStatus
    started_with: int | None
    temporal_link: str | None

    @property
    def running(self) -> bool:
        return self.status.status == RUNNING


async def _followed(runtime: Runtime, redelivery: str, count: str) -> BulkFollowed | None:
    """The bulk redelivery `redelivery` names (None if it names none)."""
    if not redelivery.startswith(BULK_PREFIX):
        return None
    try:
        status = await redelivery_status(runtime, redelivery)
    except NotFound:
        return None
    if status.kind != "bulk":
        return None
    started_with = int(count) if count.isdigit() and len(count) < 10 else None
    return BulkFollowed(status, started_with, temporal_ui_link(runtime, redelivery))


@router.get("/overview")
async def overview_page(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Totals, a chart per platform and the failures to look at, for the chosen range; a
    bad choice is shown next to its field (422) with the default range's numbers.
    `redelivery` names a bulk redelivery started from Needs attention, whose progress is
    shown (the page reloads itself while it runs)."""
    raw = dict(request.query_params)
    followed = await _followed(runtime, raw.get("redelivery", ""), raw.get("count", ""))
    return await _overview(request, runtime, raw, followed=followed)


@router.post("/overview/redeliver")
async def redeliver_failed(request: Request, runtime: RuntimeDep, form: FormDep) -> Response:
    """Redeliver every conversion Needs attention covers (a send failed for good, received
    in the range shown, of the campaign chosen) as one bulk redelivery, as
    `POST /api/redeliveries` does; then the overview following it. Nothing to redeliver:
    the overview says so and no workflow starts."""
    try:
        filters = OverviewFilters.model_validate(form)
    except ValidationError as exc:
        field, message = next(iter(field_errors(exc).items()))
        raise InvalidField(f"{field}: {message}", field) from None
    zone = await workspace_zone(runtime)
    since, until = time_range(filters.range, datetime.now(UTC), zone)
    store = Overview(runtime.clickhouse)
    _, failing = await runtime.run(store.needing_attention, since, until, 1, filters.campaign_id)
    shown = {"range": filters.range, "campaign_id": filters.campaign_id or ""}
    if failing == 0:
        notice = "Nothing failed for good in this range: no redelivery started."
        return await _overview(request, runtime, shown, notice=notice)
    # The bulk filter takes failed and partial conversions, as the list does; a partial one
    # with no failed send (delivered and not sendable) is counted "nothing to send".
    body = RedeliveriesBody(since=since, until=until, campaign_id=filters.campaign_id)
    started = await redeliver_many(runtime, body)
    query = urlencode({**shown, "redelivery": started.id, "count": failing})
    return RedirectResponse(f"/ui/overview?{query}#attention", status_code=303)


async def _overview(
    request: Request,
    runtime: Runtime,
    raw: dict[str, str],
    notice: str = "",
    followed: BulkFollowed | None = None,
) -> Response:
    errors: dict[str, str] = {}
    try:
        filters = OverviewFilters.model_validate(raw)
    except ValidationError as exc:
        errors = field_errors(exc)
        filters = OverviewFilters()
    zone = await workspace_zone(runtime)
    since, until = time_range(filters.range, datetime.now(UTC), zone)
    store = Overview(runtime.clickhouse)
    buckets = await runtime.run(store.buckets, since, until, zone, filters.campaign_id)
    attention, failing = await runtime.run(
        store.needing_attention, since, until, ATTENTION_LIMIT, filters.campaign_id
    )
    retrying = await runtime.run(
        retrying_sends,
        runtime.clickhouse,
        until,
        retry_bounds(runtime),
        ATTENTION_LIMIT,
        filters.campaign_id,
    )
    unit = unit_for(since, until)
    local_since = since.astimezone(zone).replace(tzinfo=None, microsecond=0)
    listed = {"since": local_since.isoformat(), "campaign_id": filters.campaign_id or ""}
    lists = [
        (state.value, "/ui/conversions?" + urlencode({**listed, "state": state.value}))
        for state in (DeliveryState.FAILED, DeliveryState.PARTIAL)
    ]
    return render(
        request,
        "overview.html",
        422 if errors else 200,
        filters=filters,
        raw=raw,
        errors=errors,
        ranges=list(RANGES.items()),
        campaigns={c.id: c.name for c in await list_campaigns(runtime)},
        zone=str(zone),
        since=since.astimezone(zone),
        unit=unit,
        buckets=[(bucket_name(b, unit), b) for b in buckets],
        charts=charts(buckets, unit),
        totals=totals(buckets),
        series_names=SERIES_NAMES,
        state_names=STATE_NAMES,
        attention=[(a, a.received_at.astimezone(zone)) for a in attention],
        failing=failing,
        retrying_summary=retrying,
        retrying_rows=[
            (r, r.received_at.astimezone(zone), r.last_at.astimezone(zone)) for r in retrying.sends
        ],
        retry_window_h=runtime.settings.delivery_retry_window_h,
        names=await _send_names(runtime, attention, retrying),
        lists=lists,
        has_networks=bool(await list_networks(runtime)),
        notice=notice,
        followed=followed,
        follow_every_s=FOLLOW_EVERY_S,
        follow_link=(
            "/ui/overview?" + urlencode({**raw, "redelivery": followed.status.id}) + "#attention"
            if followed
            else ""
        ),
    )
