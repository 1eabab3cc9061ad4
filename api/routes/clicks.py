"""Click capture: the tracking redirect and the server-side click API."""

import asyncio
import ipaddress
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from api.deps import AdminDep, RuntimeDep
from api.schemas import ClickIn
from relay.errors import BadParameter, NotFound
from relay.ids import new_click_id
from relay.models import Click
from relay.store.rows import utc_now

router = APIRouter(tags=["clicks"])

_QUERY_FIELDS = ("fbclid", "ttclid", "external_id", "sub1", "sub2", "sub3", "sub4", "sub5")
_COOKIES = {"fbc": "_fbc", "fbp": "_fbp", "ttp": "_ttp"}
_GEO_HEADERS = {
    "country": ("x-geo-country", "cf-ipcountry"),
    "region": ("x-geo-region", "cf-region"),
    "city": ("x-geo-city", "cf-ipcity"),
}
_MAX_QUERY_VALUE = 512


def client_ip(request: Request, trusted_proxies: list[str]) -> str:
    """The visitor's IP: the peer, or the X-Forwarded-For entry a trusted proxy added."""
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for", "")
    if peer in trusted_proxies and forwarded:
        for hop in reversed([h.strip() for h in forwarded.split(",")]):
            if hop not in trusted_proxies:
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    break
    return peer


def _geo(request: Request, field: str) -> str:
    for header in _GEO_HEADERS[field]:
        value = request.headers.get(header, "").strip()
        if value and value.upper() not in ("XX", "T1"):
            return value[:64]
    return ""


@router.get("/c/{campaign_id}", status_code=302, response_class=RedirectResponse)
async def track_click(campaign_id: str, request: Request, runtime: RuntimeDep) -> RedirectResponse:
    """Record a click and redirect to the campaign's offer URL with `{click_id}` filled in."""
    campaign = await asyncio.to_thread(runtime.config.get_campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id!r} does not exist", "campaign_id")
    values: dict[str, str] = {}
    for name in _QUERY_FIELDS:
        value = request.query_params.get(name, "")
        if len(value) > _MAX_QUERY_VALUE:
            raise BadParameter(f"{name} is longer than {_MAX_QUERY_VALUE} characters", name)
        values[name] = value
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
        **{k: request.cookies.get(c, "")[:_MAX_QUERY_VALUE] for k, c in _COOKIES.items()},
        **values,
    )
    await asyncio.to_thread(runtime.traffic.save_click, click)
    return RedirectResponse(landing, status_code=302)


@router.post("/api/clicks", status_code=201, dependencies=[AdminDep])
async def record_click(body: ClickIn, runtime: RuntimeDep) -> dict[str, str]:
    """Record a click a lander captured server-side; returns its click ID."""
    campaign = await asyncio.to_thread(runtime.config.get_campaign, body.campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {body.campaign_id!r} does not exist", "campaign_id")
    click = Click(click_id=new_click_id(), clicked_at=utc_now(), **body.model_dump())
    click.country = click.country.upper()
    await asyncio.to_thread(runtime.traffic.save_click, click)
    return {"click_id": click.click_id}
