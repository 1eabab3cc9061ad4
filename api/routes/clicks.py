"""Click capture: the tracking redirect and the server-side click API."""

import asyncio
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from api.deps import AdminDep, RuntimeDep, client_ip
from api.openapi import errors
from api.params import decoded_pairs, one_value_each
from api.schemas import ClickIn
from relay.core.errors import BadParameter, InvalidField, NotFound
from relay.core.ids import conversion_id, new_click_id
from relay.destinations import registry
from relay.domain.events import normalize_event_type
from relay.domain.models import Click
from relay.domain.postback_params import conversion_identity, identifier_problem, text_problem
from relay.store.rows import utc_now

router = APIRouter(tags=["clicks"])

_QUERY_FIELDS = ("fbclid", "ttclid", "external_id", "sub1", "sub2", "sub3", "sub4", "sub5")
_COOKIES = {"fbc": "_fbc", "fbp": "_fbp", "ttp": "_ttp"}
# Free text a buyer chooses (ad and creative names): what an identifier refuses besides
# controls and bidi controls, a zero-width non-joiner for one, belongs in some languages.
_FREE_TEXT = frozenset({"sub1", "sub2", "sub3", "sub4", "sub5"})
_GEO_HEADERS = {
    "country": ("x-geo-country", "cf-ipcountry"),
    "region": ("x-geo-region", "cf-region"),
    "city": ("x-geo-city", "cf-ipcity"),
}
_MAX_QUERY_VALUE = 512


def _checked(name: str, value: str) -> str:
    """A query parameter or cookie as recorded; too long, or holding a control, bidi or (but
    in free text) invisible character, it is a 400 naming it."""
    if len(value) > _MAX_QUERY_VALUE:
        raise BadParameter(f"{name} is longer than {_MAX_QUERY_VALUE} characters", name)
    problem = text_problem(value) if name in _FREE_TEXT else identifier_problem(value)
    if problem is not None:
        raise BadParameter(f"{name} {problem}", name)
    return value


def _platform_click_ids(request: Request) -> dict[str, str]:
    """Click IDs of platforms without a field of their own (relay/destinations/ `click_ids`),
    from the landing URL's query, else from the platform's first-party cookie."""
    found = {}
    for identifier in registry.stored_click_ids():
        value = request.query_params.get(identifier.param, "")
        if not value and identifier.cookie:
            value = request.cookies.get(identifier.cookie, "")[:_MAX_QUERY_VALUE]
        if value := _checked(identifier.param, value):
            found[identifier.param] = value
    return found


def _geo(request: Request, field: str) -> str:
    for header in _GEO_HEADERS[field]:
        value = request.headers.get(header, "").strip()
        if value and value.upper() not in ("XX", "T1"):
            return value[:64]
    return ""


@router.get(
    "/c/{campaign_id}",
    status_code=302,
    response_class=RedirectResponse,
    responses=errors(400, 503),
)
async def track_click(campaign_id: str, request: Request, runtime: RuntimeDep) -> RedirectResponse:
    """Record a click and redirect to the campaign's offer URL with `{click_id}` filled in."""
    campaign = await runtime.config_cache.campaign(campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id!r} does not exist", "campaign_id")
    values = {name: _checked(name, request.query_params.get(name, "")) for name in _QUERY_FIELDS}
    cookies = {
        field: _checked(cookie, request.cookies.get(cookie, "")[:_MAX_QUERY_VALUE])
        for field, cookie in _COOKIES.items()
    }
    click_id = new_click_id()
    landing = campaign.offer_url.replace("{click_id}", quote(click_id, safe=""))
    click = Click(
        click_id=click_id,
        campaign_id=campaign.id,
        clicked_at=utc_now(),
        ip=client_ip(request, runtime.settings.trusted_proxies),
        user_agent=request.headers.get("user-agent", "")[:_MAX_QUERY_VALUE],
        landing_url=landing,
        referrer=request.headers.get("referer", "")[:2048],
        country=_geo(request, "country").upper()[:2],
        region=_geo(request, "region"),
        city=_geo(request, "city"),
        click_ids=_platform_click_ids(request),
        **cookies,
        **values,
    )
    await asyncio.to_thread(runtime.traffic.save_click, click)
    runtime.clicks.remember(click)
    return RedirectResponse(landing, status_code=302)


@router.post("/api/clicks", status_code=201, dependencies=[AdminDep], responses=errors(404))
async def record_click(body: ClickIn, runtime: RuntimeDep) -> dict[str, str]:
    """Record a click a lander captured server-side; returns its click ID. `click_ids`
    holds the click IDs of platforms without a field of their own, by parameter."""
    campaign = await runtime.config_cache.campaign(body.campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {body.campaign_id!r} does not exist", "campaign_id")
    stored = {identifier.param for identifier in registry.stored_click_ids()}
    for param in body.click_ids:
        if param not in stored:
            known = ", ".join(sorted(stored)) or "none besides fbclid and ttclid"
            message = f"click_ids: {param!r} is no platform's click ID (known: {known})"
            raise InvalidField(message, f"click_ids.{param}")
    click = Click(click_id=new_click_id(), clicked_at=utc_now(), **body.model_dump())
    click.country = click.country.upper()
    await asyncio.to_thread(runtime.traffic.save_click, click)
    runtime.clicks.remember(click)
    return {"click_id": click.click_id}


class EventIdOut(BaseModel):
    event_id: str = Field(examples=["conv_f6Lx-kbuIq5yT9RoFzkN05Kb"])


@router.get("/api/event-id", response_model=EventIdOut, responses=errors(400))
async def event_id(
    request: Request,
    response: Response,
    click_id: Annotated[str, Query(description="aliases: clickid, cid, subid")] = "",
    event: Annotated[str, Query(description="as the postback will send it; default sale")] = "",
    txid: Annotated[str, Query(description="aliases: transaction_id, tid")] = "",
) -> EventIdOut:
    """The event_id Relay will send for this click, event and txid, so a browser pixel can
    send the same one (`fbq(..., {eventID})`, `ttq.track(..., {event_id})`) and the
    platform counts the pair once. Parameters are read exactly as `/postback` reads them.
    Public: the ID is derived, not secret."""
    # The declared parameters document the route; the raw query is read and validated as
    # `/postback` reads it (aliases, strict UTF-8, repeats, every parameter's rules).
    raw = one_value_each(decoded_pairs(request.scope.get("query_string", b"")))
    click, inbound, transaction = conversion_identity(raw)
    # Landers call this from the browser, on their own origin.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return EventIdOut(event_id=conversion_id(click, normalize_event_type(inbound), transaction))
