"""One campaign's page and the changes made on it: its pixels, custom conversions and
outbound postbacks, each through the JSON API's own functions (api/routes/pixels.py,
api/routes/funnel.py), so a form is refused exactly as the API would refuse its body."""

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import RedirectResponse, Response

from api.deps import RuntimeDep
from api.routes.campaigns import get_campaign
from api.routes.funnel import list_custom_conversions, list_outbound_postbacks
from api.routes.networks import list_networks
from api.routes.pixels import create_pixel, list_pixels, update_pixel
from api.routes.reading import workspace_zone
from api.schemas import PixelIn, PixelPatch
from api.ui.campaign_forms import (
    NOTICES,
    FormState,
    Refusal,
    kept,
    network_boxes,
    optional,
    submitted,
    ticked,
)
from api.ui.pages import ConsoleRoute, FormDep, SessionDep, public_base, render
from relay.destinations.postback import MACROS, redact_url
from relay.domain.models import (
    Campaign,
    CustomConversion,
    OutboundPostback,
    Pixel,
    Platform,
    TikTokApi,
)
from relay.runtime import Runtime

router = APIRouter(route_class=ConsoleRoute)
B = TypeVar("B", bound=BaseModel)
Choice = tuple[str, str]  # a form option: its value and its label

CAMPAIGN_FIELDS = ("name", "offer_url", "currency", "attribution_window_days", "repeatable_events")
EDITABLE_PIXEL_FIELDS = ("name", "primary", "event_name", "test_event_code", "tiktok_api")
# The access token is never filled back in.
PIXEL_FIELDS = ("platform", "platform_pixel_id", *EDITABLE_PIXEL_FIELDS)

PLATFORMS = [(Platform.META.value, "Meta"), (Platform.TIKTOK.value, "TikTok")]
TIKTOK_APIS = [
    (TikTokApi.EVENTS_2_0.value, "Events API 2.0 (recommended; events Purchase, Lead…)"),
    (TikTokApi.PIXEL_TRACK.value, "Pixel track, legacy (events CompletePayment, SubmitForm…)"),
]
MACRO_MEANINGS = {
    "click_id": "the click ID from the tracking link",
    "conversion_id": "Relay's ID of the conversion (the same for every re-send: dedup on it)",
    "event_id": "the event ID sent to Meta and TikTok (equal to conversion_id)",
    "payout": "the payout the network posted",
    "currency": "its currency (ISO code)",
    "event": "the event type (sale, lead, AddToCart…)",
    "txid": "the network's transaction ID",
    "external_id": "the external_id of the click",
    **{f"sub{n}": f"the click's sub{n}" for n in range(1, 6)},
}
MACRO_LIST = [(name, MACRO_MEANINGS[name]) for name in MACRO_MEANINGS if name in MACROS]


def campaign_values(campaign: Campaign) -> dict[str, str]:
    return {
        "name": campaign.name,
        "offer_url": campaign.offer_url,
        "currency": campaign.currency,
        "attribution_window_days": str(campaign.attribution_window_days),
        "repeatable_events": ", ".join(campaign.repeatable_events),
        **network_boxes(campaign.allowed_networks),
    }


async def network_choices(runtime: Runtime, campaign: Campaign | None = None) -> list[Choice]:
    """The campaign form's network boxes: every network by name, and a network the campaign
    still lists although it was deleted (so saving the form does not widen the campaign to
    any network unasked)."""
    live = [(n.id, n.name) for n in await list_networks(runtime)]
    known = {network_id for network_id, _ in live}
    listed = campaign.allowed_networks if campaign else []
    return live + [(n, f"{n} (deleted)") for n in listed if n not in known]


def _pixel_values(pixel: Pixel) -> dict[str, str]:
    return {
        "name": pixel.name,
        "primary": "on" if pixel.primary else "",
        "event_name": pixel.event_name or "",
        "test_event_code": pixel.test_event_code or "",
        "tiktok_api": pixel.tiktok_api.value,
    }


def _custom_values(custom: CustomConversion) -> dict[str, str]:
    return {
        "inbound_event": custom.inbound_event,
        "pixel": custom.pixel_id,
        "event_name": custom.event_name,
    }


def _postback_values(postback: OutboundPostback) -> dict[str, str]:
    """The URL template is not filled in: it may hold a secret (an empty field keeps it)."""
    return {"url_template": "", "method": postback.method, "events": ", ".join(postback.events)}


def _forms(
    campaign: Campaign,
    pixels: list[Pixel],
    customs: list[CustomConversion],
    postbacks: list[OutboundPostback],
) -> dict[str, FormState]:
    """Every form of the page by its name, filled with the current values."""
    items = [
        *(("pixel", p.id) for p in pixels),
        *(("custom", c.id) for c in customs),
        *(("postback", p.id) for p in postbacks),
    ]
    return {
        "campaign": FormState(campaign_values(campaign)),
        "new-pixel": FormState({"primary": "on", "tiktok_api": TikTokApi.EVENTS_2_0.value}),
        "new-custom-conversion": FormState(),
        "new-outbound-postback": FormState({"method": "GET"}),
        "delete": FormState(),
        **{f"pixel-{p.id}": FormState(_pixel_values(p)) for p in pixels},
        **{f"custom-{c.id}": FormState(_custom_values(c)) for c in customs},
        **{f"postback-{p.id}": FormState(_postback_values(p)) for p in postbacks},
        **{f"delete-{kind}-{item_id}": FormState() for kind, item_id in items},
    }


def tracking_link(request: Request, runtime: Runtime, campaign_id: str) -> str:
    """The link ads point at: `/c/{campaign_id}` on RELAY_PUBLIC_URL, else on this host."""
    return f"{public_base(request, runtime)}/c/{quote(campaign_id, safe='')}"


def to_campaign(path_id: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/campaigns/{quote(path_id, safe='')}?done={done}", 303)


async def show_campaign(
    request: Request,
    runtime: Runtime,
    campaign_id: str,
    status: int = 200,
    failed: tuple[str, FormState] | None = None,
    done: str = "",
) -> Response:
    """The campaign's page; `failed` names the form the API refused and what it said."""
    campaign = await get_campaign(campaign_id, runtime)
    pixels = await list_pixels(campaign_id, runtime)
    customs = await list_custom_conversions(campaign_id, runtime)
    postbacks = await list_outbound_postbacks(campaign_id, runtime)
    zone = await workspace_zone(runtime)
    networks = await network_choices(runtime, campaign)
    forms = _forms(campaign, pixels, customs, postbacks)
    error = ""
    if failed is not None:
        if failed[0] not in forms:  # e.g. a pixel deleted meanwhile: no form to show it in
            error = "; ".join(failed[1].errors.values())
        forms[failed[0]] = failed[1]
    return render(
        request,
        "campaign.html",
        status,
        campaign=campaign,
        created=campaign.created_at.astimezone(zone),
        zone=str(zone),
        link=tracking_link(request, runtime, campaign.id),
        networks=networks,
        network_names=dict(networks),
        public_url_set=runtime.settings.public_url is not None,
        pixels=pixels,
        pixel_names={p.id: f"{p.name} ({p.platform.value})" for p in pixels},
        customs=customs,
        postbacks=[(p, redact_url(p.url_template)) for p in postbacks],
        forms=forms,
        platforms=PLATFORMS,
        tiktok_apis=TIKTOK_APIS,
        tiktok_api_names=dict(TIKTOK_APIS),
        macros=MACRO_LIST,
        notice=NOTICES.get(done, ""),
        error=error,
    )


@router.get("/campaigns/{campaign_id}")
async def campaign_page(
    request: Request, campaign_id: str, runtime: RuntimeDep, session: SessionDep, done: str = ""
) -> Response:
    """The campaign: its facts and tracking link, pixels, custom conversions, postbacks."""
    return await show_campaign(request, runtime, campaign_id, done=done)


async def change(
    request: Request,
    runtime: Runtime,
    campaign_id: str,
    refill: tuple[str, dict[str, str]],
    submit: tuple[type[B], dict[str, Any], Callable[[B], Awaitable[object]]],
    done: str,
) -> Response:
    """`submit` (the API's model, the body, the API's function) applied; then back to the
    page with the `done` notice, or, refused, the page again with the form `refill` names
    filled with its values and the API's messages (422 or the API's status)."""
    try:
        await submitted(*submit)
    except Refusal as exc:
        name, values = refill
        state = FormState(values, exc.errors)
        return await show_campaign(request, runtime, campaign_id, exc.status, (name, state))
    return to_campaign(campaign_id, done)


def _pixel_body(form: dict[str, str]) -> dict[str, Any]:
    """The editable fields of a pixel; an empty token field sends no token (an edit keeps
    the current one; a new pixel is refused, as the API refuses it)."""
    body: dict[str, Any] = {
        "name": form.get("name", ""),
        "primary": ticked(form, "primary"),
        "event_name": optional(form.get("event_name", "")),
        "test_event_code": optional(form.get("test_event_code", "")),
    }
    if form.get("tiktok_api"):
        body["tiktok_api"] = form["tiktok_api"]
    if form.get("access_token", "").strip():
        body["access_token"] = form["access_token"]
    return body


@router.post("/campaigns/{campaign_id}/pixels")
async def add_pixel(
    request: Request, campaign_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Add a pixel as `POST /api/campaigns/{id}/pixels` does."""
    body = _pixel_body(form) | {
        "platform": form.get("platform", ""),
        "platform_pixel_id": form.get("platform_pixel_id", ""),
    }

    refill = ("new-pixel", kept(form, PIXEL_FIELDS))
    call = functools.partial(create_pixel, campaign_id, runtime=runtime)
    return await change(request, runtime, campaign_id, refill, (PixelIn, body, call), "pixel-added")


@router.post("/campaigns/{campaign_id}/pixels/{pixel_id}")
async def edit_pixel(
    request: Request, campaign_id: str, pixel_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Change a pixel as `PATCH` does; an empty access token field keeps the current token."""
    body = _pixel_body(form)

    refill = (f"pixel-{pixel_id}", kept(form, EDITABLE_PIXEL_FIELDS))
    call = functools.partial(update_pixel, campaign_id, pixel_id, runtime=runtime)
    return await change(
        request, runtime, campaign_id, refill, (PixelPatch, body, call), "pixel-saved"
    )
