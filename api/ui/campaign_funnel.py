"""A campaign's custom conversions and outbound postbacks, added and deleted from its page
through the JSON API's own functions (api/routes/funnel.py)."""

import functools

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import RuntimeDep
from api.routes.funnel import (
    create_custom_conversion,
    create_outbound_postback,
    delete_custom_conversion,
    delete_outbound_postback,
)
from api.schemas import CustomConversionIn, OutboundPostbackIn
from api.ui.campaign_forms import kept, listed
from api.ui.campaign_page import change, to_campaign
from api.ui.pages import ConsoleRoute, FormDep

router = APIRouter(route_class=ConsoleRoute)

CUSTOM_FIELDS = ("inbound_event", "pixel", "event_name")
POSTBACK_FIELDS = ("url_template", "method", "events")


@router.post("/campaigns/{campaign_id}/custom-conversions")
async def add_custom_conversion(
    request: Request, campaign_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Add a custom conversion as `POST /api/campaigns/{id}/custom-conversions` does."""
    values = kept(form, CUSTOM_FIELDS)
    call = functools.partial(create_custom_conversion, campaign_id, runtime=runtime)
    submit = (CustomConversionIn, dict(values), call)
    refill = ("new-custom-conversion", values)
    return await change(request, runtime, campaign_id, refill, submit, "custom-conversion-added")


@router.post("/campaigns/{campaign_id}/custom-conversions/{custom_conversion_id}/delete")
async def remove_custom_conversion(
    campaign_id: str, custom_conversion_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    await delete_custom_conversion(campaign_id, custom_conversion_id, runtime)
    return to_campaign(campaign_id, "custom-conversion-deleted")


@router.post("/campaigns/{campaign_id}/postbacks")
async def add_outbound_postback(
    request: Request, campaign_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Add an outbound postback as `POST /api/campaigns/{id}/postbacks` does."""
    values = kept(form, POSTBACK_FIELDS)
    call = functools.partial(create_outbound_postback, campaign_id, runtime=runtime)
    submit = (OutboundPostbackIn, {**values, "events": listed(values["events"])}, call)
    refill = ("new-outbound-postback", values)
    return await change(request, runtime, campaign_id, refill, submit, "postback-added")


@router.post("/campaigns/{campaign_id}/postbacks/{postback_id}/delete")
async def remove_outbound_postback(
    campaign_id: str, postback_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    await delete_outbound_postback(campaign_id, postback_id, runtime)
    return to_campaign(campaign_id, "postback-deleted")
