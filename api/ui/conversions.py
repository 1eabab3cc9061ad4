"""The Conversions pages: the filtered list, one conversion with every attempt, and its
Redeliver buttons. Everything is read and started through the services the JSON API calls
too (api/services/conversions.py, api/services/redeliveries.py), so the pages and the API
agree."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.responses import RedirectResponse, Response

from api.deps import RuntimeDep
from api.services.campaigns import list_campaigns
from api.services.conversions import (
    ConversionOut,
    ConversionQuery,
    get_conversion,
    list_conversions,
)
from api.services.listing import Time, Window
from api.services.networks import list_networks
from api.services.redeliveries import (
    RedeliverBody,
    RedeliveryOut,
    RedeliveryStatus,
    redelivery_status,
    start_redelivery,
    temporal_ui_link,
)
from api.services.settings import workspace_zone
from api.ui.overview import retry_bounds
from api.ui.pages import ConsoleRoute, FormDep, SessionDep, field_errors, render
from relay.core.errors import Conflict, InvalidField, NotFound
from relay.domain.delivery_states import DeliveryState
from relay.domain.events import normalize_event_type
from relay.domain.models import Verdict
from relay.domain.redelivery import REDELIVER_PREFIX
from relay.runtime import Runtime
from relay.store.rows import utc_now

router = APIRouter(route_class=ConsoleRoute)

FOLLOW_EVERY_S = 2  # how often a conversion's page reloads while a redelivery of it runs
RUNNING = "RUNNING"  # a redelivery's status while its workflow runs (RedeliveryStatus)
EXPORT_LIMIT = 100_000  # rows the CSV export holds at most
PAGE_SIZE = 50
Text = Annotated[str | None, Field(max_length=200)]


class ListFilters(BaseModel):
    """A list's filters as the form sends them; an empty field is no filter. Times
    without an offset are in the workspace's timezone, as in the API."""

    model_config = ConfigDict(extra="ignore")
    campaign_id: Text = None
    since: Time | None = None
    until: Time | None = None
    page: int = Field(default=1, ge=1, le=20_000)
    size: int = Field(default=PAGE_SIZE, ge=1, le=500)  # conversions a page lists

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def link(self, page: int) -> str:
        """The list's address with these filters, at `page`."""
        given = self.model_dump(mode="json", exclude_none=True, exclude={"page", "size"})
        if self.size != PAGE_SIZE:
            given["size"] = self.size
        return "?" + urlencode({**given, "page": page})

    def export_link(self) -> str:
        """The CSV export's address with these filters (every page)."""
        given = self.model_dump(mode="json", exclude_none=True, exclude={"page", "size"})
        return "/ui/conversions.csv?" + urlencode(given)

    def window(self, success: bool | None = None) -> Window:
        """The API's paging and time range for these filters."""
        offset = min((self.page - 1) * self.size, 1_000_000)
        return Window(success, self.since, self.until, self.size, offset)


F = TypeVar("F", bound=ListFilters)


def read_filters(kind: type[F], raw: dict[str, str]) -> tuple[F, dict[str, str]]:
    """The filters from the query string, and each bad one's message by field."""
    try:
        filters = kind.model_validate(raw)
    except ValidationError as exc:
        return kind(), field_errors(exc)
    if filters.since and filters.until and filters.since >= filters.until:
        return filters, {"until": "must be later than since"}
    return filters, {}


class ConversionFilters(ListFilters):
    find: Text = None  # a conversion, click or transaction ID
    network_id: Text = None
    event: Text = None
    state: DeliveryState | None = None


def conversion_query(filters: ConversionFilters) -> dict[str, Any]:
    """The list API's filters for the page's (its time range and paging aside)."""
    return {
        "campaign_id": filters.campaign_id,
        "network_id": filters.network_id,
        "event_type": normalize_event_type(filters.event) if filters.event else None,
        "delivery_state": filters.state,
        "find": filters.find,
    }


@router.get("/conversions")
async def conversions_page(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Conversions, newest first, with the filters' form; a bad filter is shown next to
    its field (422) and lists nothing."""
    raw = dict(request.query_params)
    filters, errors = read_filters(ConversionFilters, raw)
    page = None
    if not errors:
        query = ConversionQuery(**conversion_query(filters))
        page = await list_conversions(runtime, filters.window(), query)
    return await render_list(
        request,
        runtime,
        "conversions.html",
        (filters, raw, errors),
        page,
        states=[(s.value, s.value) for s in DeliveryState],
        export_limit=EXPORT_LIMIT,
    )


async def render_list(
    request: Request,
    runtime: Runtime,
    template: str,
    form: tuple[ListFilters, dict[str, str], dict[str, str]],
    page: object | None,
    **context: Any,
) -> Response:
    """A list page: its filters as read from `raw` with their `errors` (422, nothing
    listed), the page of items, the campaigns and networks to filter by and name, and the
    workspace's zone."""
    filters, raw, errors = form
    campaigns = await list_campaigns(runtime)
    networks = await list_networks(runtime)
    return render(
        request,
        template,
        422 if errors else 200,
        filters=filters,
        raw=raw,
        errors=errors,
        page=page,
        default_size=PAGE_SIZE,
        campaigns={c.id: c.name for c in campaigns},
        networks={n.id: n.name for n in networks},
        zone=str(await workspace_zone(runtime)),
        **context,
    )


@router.get("/conversions/{conversion_id}")
async def conversion_page(
    request: Request,
    conversion_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    redelivery: str = "",
) -> Response:
    """One conversion; `redelivery` names a redelivery of it whose status is shown."""
    status = None
    if redelivery.startswith(f"{REDELIVER_PREFIX}{conversion_id}_"):
        try:
            status = await redelivery_status(runtime, redelivery)
        except NotFound:
            status = None
    return await _conversion(request, runtime, conversion_id, redelivery=status)


@router.post("/conversions/{conversion_id}/redeliver")
async def redeliver(
    request: Request, conversion_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Every failed send (or the one `pixel_id` or `postback_id` names) sent again, as
    `POST /api/conversions/{id}/redeliver` does; then the conversion with the redelivery."""
    wanted = RedeliverBody(
        pixel_id=form.get("pixel_id") or None, postback_id=form.get("postback_id") or None
    )
    try:
        started = await start_redelivery(runtime, conversion_id, wanted)
    except (Conflict, InvalidField) as exc:
        return await _conversion(request, runtime, conversion_id, exc.status_code, exc.message)
    if started.workflow_id is None:
        return await _conversion(request, runtime, conversion_id, nothing_sent=started)
    target = f"/ui/conversions/{quote(conversion_id)}?redelivery={quote(started.workflow_id)}"
    return RedirectResponse(target, status_code=303)


async def _send_names(runtime: Runtime, conversion: ConversionOut) -> dict[str, str]:
    """What a person calls each send: the pixel's name and platform, the postback's URL as
    logged (secrets redacted), else its ID."""
    pixels = await runtime.run(runtime.config.list_pixels, conversion.campaign_id)
    names = {p.id: f"{p.name} ({p.platform.value})" for p in pixels}
    for fire in conversion.fires:  # a pixel deleted since: its name as it was logged
        names.setdefault(fire.pixel_id, f"{fire.pixel_name} ({fire.platform.value}, deleted)")
    for attempt in conversion.postbacks:
        names[attempt.postback_id] = f"{attempt.method} {attempt.url}"
    return names


def retried_until(
    conversion: ConversionOut, window: timedelta, quiet: timedelta, now: datetime
) -> dict[str, datetime]:
    """For each send still pending whose last attempt, within `quiet`, is to be retried:
    about when its retries stop (its retry window runs from its first attempt), in the
    zone its attempts are shown in. A run that stopped without ending is left out."""
    attempts: dict[str, list[tuple[datetime, str]]] = {}
    for f in conversion.fires:
        attempts.setdefault(f.pixel_id, []).append((f.fired_at, f.verdict))
    for p in conversion.postbacks:
        attempts.setdefault(p.postback_id, []).append((p.sent_at, p.verdict))
    found: dict[str, datetime] = {}
    for send in conversion.sends:
        tried = attempts.get(send.target_id)
        if send.state != DeliveryState.PENDING or not tried:
            continue
        (first, _), (last, verdict) = tried[0], tried[-1]
        until = (first.astimezone(UTC) + window).astimezone(first.tzinfo)  # elapsed time
        if verdict == Verdict.RETRYABLE and last > now - quiet and until > now:
            found[send.target_id] = until
    return found


async def _conversion(
    request: Request,
    runtime: Runtime,
    conversion_id: str,
    status: int = 200,
    error: str = "",
    redelivery: RedeliveryStatus | None = None,
    nothing_sent: RedeliveryOut | None = None,
) -> Response:
    conversion = await get_conversion(runtime, conversion_id)
    return render(
        request,
        "conversion.html",
        status,
        conversion=conversion,
        names=await _send_names(runtime, conversion),
        campaigns={c.id: c.name for c in await list_campaigns(runtime)},
        networks={n.id: n.name for n in await list_networks(runtime)},
        failed=[s for s in conversion.sends if s.state == DeliveryState.FAILED],
        retried_until=retried_until(
            conversion,
            timedelta(hours=runtime.settings.delivery_retry_window_h),
            retry_bounds(runtime)[1],
            utc_now(),
        ),
        temporal_link=temporal_ui_link(runtime, conversion_id),
        zone=str(await workspace_zone(runtime)),
        error=error,
        redelivery=redelivery,
        nothing_sent=nothing_sent,
        following=redelivery is not None and redelivery.status == RUNNING,
        follow_every_s=FOLLOW_EVERY_S,
    )
