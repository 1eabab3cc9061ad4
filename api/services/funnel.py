"""A campaign's funnel beyond its pixels: custom conversions (an inbound event routed to
one pixel under a platform event name) and outbound postbacks (conversions forwarded to a
traffic source)."""

from api.crud import fetch, fetch_in_campaign, patched, remove, save
from api.schemas import (
    CustomConversionIn,
    CustomConversionPatch,
    OutboundPostbackIn,
    OutboundPostbackPatch,
)
from api.services.pixels import get_pixel
from relay.core.errors import InvalidField, NotFound
from relay.core.ids import new_resource_id
from relay.destinations.addresses import template_destination_problem
from relay.domain.events import normalize_event_type
from relay.domain.models import Campaign, CustomConversion, OutboundPostback
from relay.runtime import Runtime
from relay.store.rows import utc_now


async def _check_pixel(runtime: Runtime, campaign_id: str, pixel_id: str) -> None:
    """A pixel that is not the campaign's is a 422 naming `pixel`."""
    try:
        await get_pixel(runtime, campaign_id, pixel_id)
    except NotFound:
        raise InvalidField(f"pixel {pixel_id!r} is not a pixel of this campaign", "pixel") from None


async def create_custom_conversion(
    runtime: Runtime, campaign_id: str, body: CustomConversionIn
) -> CustomConversion:
    """A new custom conversion of the campaign, its pixel checked to be the campaign's."""
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


async def list_custom_conversions(runtime: Runtime, campaign_id: str) -> list[CustomConversion]:
    """The campaign's custom conversions; a 404 if there is no such campaign."""
    await fetch(runtime, Campaign, campaign_id, "campaign")
    return await runtime.run(runtime.config.in_campaign, CustomConversion, campaign_id)


async def get_custom_conversion(
    runtime: Runtime, campaign_id: str, custom_conversion_id: str
) -> CustomConversion:
    """The campaign's custom conversion, or a 404 naming `custom_conversion_id`."""
    return await fetch_in_campaign(
        runtime, CustomConversion, campaign_id, custom_conversion_id, "custom_conversion"
    )


async def update_custom_conversion(
    runtime: Runtime, campaign_id: str, custom_conversion_id: str, body: CustomConversionPatch
) -> CustomConversion:
    """The custom conversion with the fields `body` sets changed (a new pixel checked)."""
    current = await get_custom_conversion(runtime, campaign_id, custom_conversion_id)
    changes: dict[str, str] = {}
    if body.pixel is not None:
        await _check_pixel(runtime, campaign_id, body.pixel)
        changes["pixel_id"] = body.pixel
    if body.inbound_event is not None:
        changes["inbound_event"] = normalize_event_type(body.inbound_event)
    return await save(
        runtime, patched(current, body, exclude=frozenset({"pixel"}), changes=changes)
    )


async def delete_custom_conversion(
    runtime: Runtime, campaign_id: str, custom_conversion_id: str
) -> None:
    """Delete the campaign's custom conversion (a 404 if there is none)."""
    await get_custom_conversion(runtime, campaign_id, custom_conversion_id)
    await remove(runtime, "custom_conversions", custom_conversion_id)


def _check_destination(runtime: Runtime, template: str) -> None:
    """Refuse a template whose host is an address outside the allowed ones (a name is
    checked on every send, on the addresses it resolves to)."""
    allowed = runtime.settings.outbound_allowed_networks
    problem = template_destination_problem(template, allowed)
    if problem is not None:
        raise InvalidField(problem, "url_template")


async def create_outbound_postback(
    runtime: Runtime, campaign_id: str, body: OutboundPostbackIn
) -> OutboundPostback:
    """A new outbound postback of the campaign, its destination checked."""
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


async def list_outbound_postbacks(runtime: Runtime, campaign_id: str) -> list[OutboundPostback]:
    """The campaign's outbound postbacks; a 404 if there is no such campaign."""
    await fetch(runtime, Campaign, campaign_id, "campaign")
    return await runtime.run(runtime.config.in_campaign, OutboundPostback, campaign_id)


async def get_outbound_postback(
    runtime: Runtime, campaign_id: str, postback_id: str
) -> OutboundPostback:
    """The campaign's outbound postback, or a 404 naming `postback_id`."""
    return await fetch_in_campaign(runtime, OutboundPostback, campaign_id, postback_id, "postback")


async def update_outbound_postback(
    runtime: Runtime, campaign_id: str, postback_id: str, body: OutboundPostbackPatch
) -> OutboundPostback:
    """The outbound postback with the fields `body` sets changed (a new URL checked)."""
    current = await get_outbound_postback(runtime, campaign_id, postback_id)
    if body.url_template is not None:
        _check_destination(runtime, body.url_template)
    changes = {}
    if body.events is not None:
        changes["events"] = [normalize_event_type(e) for e in body.events]
    return await save(runtime, patched(current, body, changes=changes))


async def delete_outbound_postback(runtime: Runtime, campaign_id: str, postback_id: str) -> None:
    """Delete the campaign's outbound postback (a 404 if there is none)."""
    await get_outbound_postback(runtime, campaign_id, postback_id)
    await remove(runtime, "outbound_postbacks", postback_id)
