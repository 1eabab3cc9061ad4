"""Custom conversions and outbound postbacks of a campaign."""

from fastapi import APIRouter, Response

from api.crud import fetch, fetch_in_campaign, patched, remove, save
from api.deps import AdminDep, RuntimeDep
from api.routes.pixels import pixel_of
from api.schemas import (
    CustomConversionIn,
    CustomConversionPatch,
    OutboundPostbackIn,
    OutboundPostbackPatch,
)
from relay.core.errors import InvalidField, NotFound
from relay.core.ids import new_resource_id
from relay.destinations.addresses import template_destination_problem
from relay.domain.events import normalize_event_type
from relay.domain.models import Campaign, CustomConversion, OutboundPostback
from relay.runtime import Runtime
from relay.store.rows import utc_now

router = APIRouter(prefix="/api/campaigns/{campaign_id}", dependencies=[AdminDep])
CUSTOM = "/custom-conversions"
POSTBACKS = "/postbacks"


async def _check_pixel(runtime: Runtime, campaign_id: str, pixel_id: str) -> None:
    try:
        await pixel_of(runtime, campaign_id, pixel_id)
    except NotFound:
        raise InvalidField(f"pixel {pixel_id!r} is not a pixel of this campaign", "pixel") from None


@router.post(CUSTOM, status_code=201, response_model=CustomConversion, tags=["custom conversions"])
async def create_custom_conversion(
    campaign_id: str, body: CustomConversionIn, runtime: RuntimeDep
) -> CustomConversion:
    """Route an inbound event (`?event=AddToCart`) to one pixel under a platform event name."""
    await fetch(runtime, Campaign, campaign_id, "campaign")
    await _check_pixel(runtime, campaign_id, body.pixel)
    now = utc_now()
    record = CustomConversion(
        id=new_resource_id("cc"),
        campaign_id=campaign_id,
        inbound_event=normalize_event_type(body.inbound_event),
        pixel_id=body.pixel,
        event_name=body.event_name,
        created_at=now,
        updated_at=now,
    )
    return await save(runtime, record)


@router.get(CUSTOM, response_model=list[CustomConversion], tags=["custom conversions"])
async def list_custom_conversions(campaign_id: str, runtime: RuntimeDep) -> list[CustomConversion]:
    await fetch(runtime, Campaign, campaign_id, "campaign")
    return await runtime.run(runtime.config.in_campaign, CustomConversion, campaign_id)


@router.get(
    CUSTOM + "/{custom_conversion_id}", response_model=CustomConversion, tags=["custom conversions"]
)
async def get_custom_conversion(
    campaign_id: str, custom_conversion_id: str, runtime: RuntimeDep
) -> CustomConversion:
    return await fetch_in_campaign(
        runtime, CustomConversion, campaign_id, custom_conversion_id, "custom_conversion"
    )


@router.patch(
    CUSTOM + "/{custom_conversion_id}", response_model=CustomConversion, tags=["custom conversions"]
)
async def update_custom_conversion(
    campaign_id: str, custom_conversion_id: str, body: CustomConversionPatch, runtime: RuntimeDep
) -> CustomConversion:
    current = await get_custom_conversion(campaign_id, custom_conversion_id, runtime)
    changes: dict[str, str] = {}
    if body.pixel is not None:
        await _check_pixel(runtime, campaign_id, body.pixel)
        changes["pixel_id"] = body.pixel
    if body.inbound_event is not None:
        changes["inbound_event"] = normalize_event_type(body.inbound_event)
    return await save(
        runtime, patched(current, body, exclude=frozenset({"pixel"}), changes=changes)
    )


@router.delete(CUSTOM + "/{custom_conversion_id}", status_code=204, tags=["custom conversions"])
async def delete_custom_conversion(
    campaign_id: str, custom_conversion_id: str, runtime: RuntimeDep
) -> Response:
    await get_custom_conversion(campaign_id, custom_conversion_id, runtime)
    await remove(runtime, "custom_conversions", custom_conversion_id)
    return Response(status_code=204)


def _check_destination(runtime: Runtime, template: str) -> None:
    """Refuse a template whose host is an address outside the allowed ones (a name is
    checked on every send, on the addresses it resolves to)."""
    allowed = runtime.settings.outbound_allowed_networks
    problem = template_destination_problem(template, allowed)
    if problem is not None:
        raise InvalidField(problem, "url_template")


@router.post(
    POSTBACKS, status_code=201, response_model=OutboundPostback, tags=["outbound postbacks"]
)
async def create_outbound_postback(
    campaign_id: str, body: OutboundPostbackIn, runtime: RuntimeDep
) -> OutboundPostback:
    """Forward conversions to a traffic source; the template's macros are checked on save."""
    await fetch(runtime, Campaign, campaign_id, "campaign")
    _check_destination(runtime, body.url_template)
    now = utc_now()
    record = OutboundPostback(
        id=new_resource_id("pb"),
        campaign_id=campaign_id,
        url_template=body.url_template,
        method=body.method,
        events=[normalize_event_type(e) for e in body.events],
        created_at=now,
        updated_at=now,
    )
    return await save(runtime, record)


@router.get(POSTBACKS, response_model=list[OutboundPostback], tags=["outbound postbacks"])
async def list_outbound_postbacks(campaign_id: str, runtime: RuntimeDep) -> list[OutboundPostback]:
    await fetch(runtime, Campaign, campaign_id, "campaign")
    return await runtime.run(runtime.config.in_campaign, OutboundPostback, campaign_id)


@router.get(
    POSTBACKS + "/{postback_id}", response_model=OutboundPostback, tags=["outbound postbacks"]
)
async def get_outbound_postback(
    campaign_id: str, postback_id: str, runtime: RuntimeDep
) -> OutboundPostback:
    return await fetch_in_campaign(runtime, OutboundPostback, campaign_id, postback_id, "postback")


@router.patch(
    POSTBACKS + "/{postback_id}", response_model=OutboundPostback, tags=["outbound postbacks"]
)
async def update_outbound_postback(
    campaign_id: str, postback_id: str, body: OutboundPostbackPatch, runtime: RuntimeDep
) -> OutboundPostback:
    current = await get_outbound_postback(campaign_id, postback_id, runtime)
    if body.url_template is not None:
        _check_destination(runtime, body.url_template)
    changes = {}
    if body.events is not None:
        changes["events"] = [normalize_event_type(e) for e in body.events]
    return await save(runtime, patched(current, body, changes=changes))


@router.delete(POSTBACKS + "/{postback_id}", status_code=204, tags=["outbound postbacks"])
async def delete_outbound_postback(
    campaign_id: str, postback_id: str, runtime: RuntimeDep
) -> Response:
    await get_outbound_postback(campaign_id, postback_id, runtime)
    await remove(runtime, "outbound_postbacks", postback_id)
    return Response(status_code=204)
