"""One campaign's page and the changes made on it: its pixels, custom conversions and
outbound postbacks, each through the services the JSON API uses (api/services/pixels.py,
api/services/funnel.py), so a form is refused exactly as the API would refuse its body. A
pixel's form shows its platform's own settings from the platform's description
(relay/destinations/)."""

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import RedirectResponse, Response

from api.deps import RuntimeDep
from api.schemas import PixelIn, PixelPatch
from api.services.campaigns import get_campaign
from api.services.funnel import list_custom_conversions, list_outbound_postbacks
from api.services.logs import PixelHealth, pixel_health
from api.services.networks import list_networks
from api.services.pixels import create_pixel, get_pixel, list_pixels, update_pixel
from api.services.settings import workspace_zone
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
from relay.destinations import registry
from relay.destinations.base import SettingField
from relay.destinations.postback.template import MACROS, redact_url
from relay.domain.models import Campaign, CustomConversion, OutboundPostback, Pixel
from relay.runtime import Runtime
from relay.store.rows import utc_now

router = APIRouter(route_class=ConsoleRoute)
B = TypeVar("B", bound=BaseModel)
Choice = tuple[str, str]  # a form option: its value and its label

CAMPAIGN_FIELDS = ("name", "offer_url", "currency", "attribution_window_days", "repeatable_events")
# A pixel's common fields; each platform's own come from its description (`fields`). The
# access token is never filled back in.
COMMON_PIXEL_FIELDS = ("name", "primary", "event_name")


def pixel_fields(new: bool) -> tuple[str, ...]:
    """The fields a refused pixel form is filled again with (a new pixel's: more)."""
    settings = tuple(s.field.name for s in new_pixel_settings())
    return (*(("platform", "platform_pixel_id") if new else ()), *COMMON_PIXEL_FIELDS, *settings)


@dataclass(frozen=True)
class ShownSetting:
    """A platform setting as a form shows it: its description, and the platforms it is
    for when the form serves several (a new pixel: "TikTok pixels only")."""

    field: SettingField
    only_for: str = ""


def new_pixel_settings() -> list[ShownSetting]:
    """Every platform's settings, each name once, noting which platforms use it."""
    users: dict[str, list[str]] = {}
    fields: dict[str, SettingField] = {}
    for destination in registry.PLATFORMS.values():
        for field in destination.fields:
            fields.setdefault(field.name, field)
            users.setdefault(field.name, []).append(destination.label)
    return [
        ShownSetting(
            field, "" if len(users[name]) == len(registry.PLATFORMS) else ", ".join(users[name])
        )
        for name, field in fields.items()
    ]


def _setting_value(pixel: Pixel, field: SettingField) -> str:
    value = getattr(pixel, field.name, None) if field.name in Pixel.model_fields else None
    if field.name not in Pixel.model_fields:
        value = pixel.options.get(field.name)
    return "" if value is None else str(value)


def pixel_facts(pixel: Pixel) -> list[tuple[str, str]]:
    """The platform's settings of a pixel as its card lists them: label, value shown."""
    shown = []
    for field in registry.platform(pixel.platform).fields:
        value = _setting_value(pixel, field)
        shown.append((field.label, dict(field.choices).get(value, value) or field.unset))
    return shown


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
    settings = registry.platform(pixel.platform).fields
    return {
        "name": pixel.name,
        "primary": "on" if pixel.primary else "",
        "event_name": pixel.event_name or "",
        **{field.name: _setting_value(pixel, field) for field in settings},
    }


def _first_choices() -> dict[str, str]:
    """A new pixel's choices start at each one's first (the platform's default)."""
    return {s.field.name: s.field.choices[0][0] for s in new_pixel_settings() if s.field.choices}


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
        "new-pixel": FormState({"primary": "on", **_first_choices()}),
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
    campaign = await get_campaign(runtime, campaign_id)
    pixels = await list_pixels(runtime, campaign_id)
    customs = await list_custom_conversions(runtime, campaign_id)
    postbacks = await list_outbound_postbacks(runtime, campaign_id)
    zone = await workspace_zone(runtime)
    networks = await network_choices(runtime, campaign)
    forms = _forms(campaign, pixels, customs, postbacks)
    health = await _pixel_health(runtime, pixels, zone)
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
        platforms=[(p.value, d.label) for p, d in registry.PLATFORMS.items()],
        platform_names={p.value: d.label for p, d in registry.PLATFORMS.items()},
        new_pixel_settings=new_pixel_settings(),
        pixel_settings={p.id: pixel_settings(p) for p in pixels},
        pixel_facts={p.id: pixel_facts(p) for p in pixels},
        pixel_health=health,
        pixel_id_help=" ".join(f"{d.label}: {d.id_help}." for d in registry.PLATFORMS.values()),
        token_help=" ".join(
            f"{d.label}: {d.credential.help}" for d in registry.PLATFORMS.values() if d.credential
        ),
        macros=MACRO_LIST,
        notice=NOTICES.get(done, ""),
        error=error,
    )


async def _pixel_health(
    runtime: Runtime, pixels: list[Pixel], zone: ZoneInfo
) -> dict[str, tuple[PixelHealth, str]]:
    """Each pixel's health, with the Pixel logs' address of its campaign's failed attempts
    over the same 24 hours (the logs filter by campaign and platform, not by pixel)."""
    now = utc_now()
    found = await asyncio.gather(*(pixel_health(runtime, p.id, now) for p in pixels))
    shown = {}
    for pixel, health in zip(pixels, found, strict=True):
        since = health.since.astimezone(zone).replace(tzinfo=None, microsecond=0)
        query = {
            "campaign_id": pixel.campaign_id,
            "platform": pixel.platform.value,
            "outcome": "false",
            "since": since.isoformat(),
        }
        shown[pixel.id] = (health, "/ui/pixel-logs?" + urlencode(query))
    return shown


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


def pixel_settings(pixel: Pixel) -> list[ShownSetting]:
    """The edit form's settings: the pixel's platform's only."""
    return [ShownSetting(field) for field in registry.platform(pixel.platform).fields]


def _pixel_body(form: dict[str, str], platform: str) -> dict[str, Any]:
    """The editable fields of a pixel, its platform's own settings (those without a field
    of the API's in `options`); an empty token field sends no token (an edit keeps the
    current one; a new pixel is refused, as the API refuses it)."""
    body: dict[str, Any] = {
        "name": form.get("name", ""),
        "primary": ticked(form, "primary"),
        "event_name": optional(form.get("event_name", "")),
    }
    known = platform in {p.value for p in registry.PLATFORMS}
    fields = registry.platform(platform).fields if known else ()
    options = {f.name: form.get(f.name, "") for f in fields if f.name not in Pixel.model_fields}
    for field in fields:
        value = form.get(field.name, "")
        if field.name in options:
            continue
        if field.choices:
            if value:
                body[field.name] = value
        else:
            body[field.name] = optional(value)
    if options:  # the platform has options: the form sets them all (an empty one: unset)
        body["options"] = {name: value for name, value in options.items() if value.strip()}
    if form.get("access_token", "").strip():
        body["access_token"] = form["access_token"]
    return body


@router.post("/campaigns/{campaign_id}/pixels")
async def add_pixel(
    request: Request, campaign_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Add a pixel as `POST /api/campaigns/{id}/pixels` does."""
    body = _pixel_body(form, form.get("platform", "")) | {
        "platform": form.get("platform", ""),
        "platform_pixel_id": form.get("platform_pixel_id", ""),
    }

    refill = ("new-pixel", kept(form, pixel_fields(new=True)))
    call = functools.partial(create_pixel, runtime, campaign_id)
    return await change(request, runtime, campaign_id, refill, (PixelIn, body, call), "pixel-added")


@router.post("/campaigns/{campaign_id}/pixels/{pixel_id}")
async def edit_pixel(
    request: Request, campaign_id: str, pixel_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Change a pixel as `PATCH` does; an empty access token field keeps the current token."""
    pixel = await get_pixel(runtime, campaign_id, pixel_id)
    body = _pixel_body(form, pixel.platform.value)

    refill = (f"pixel-{pixel_id}", kept(form, pixel_fields(new=False)))
    call = functools.partial(update_pixel, runtime, campaign_id, pixel_id)
    return await change(
        request, runtime, campaign_id, refill, (PixelPatch, body, call), "pixel-saved"
    )
