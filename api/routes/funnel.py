"""Custom conversions and outbound postbacks of a campaign (the behaviour is
api/services/funnel.py's)."""

from fastapi import APIRouter, Response

from api.deps import AdminDep, RuntimeDep
from api.schemas import (
    CustomConversionIn,
    CustomConversionPatch,
    OutboundPostbackIn,
    OutboundPostbackPatch,
)
from api.services import funnel
from relay.domain.models import CustomConversion, OutboundPostback

router = APIRouter(prefix="/api/campaigns/{campaign_id}", dependencies=[AdminDep])
CUSTOM = "/custom-conversions"
POSTBACKS = "/postbacks"


@router.post(CUSTOM, status_code=201, response_model=CustomConversion, tags=["custom conversions"])
async def create_custom_conversion(
    campaign_id: str, body: CustomConversionIn, runtime: RuntimeDep
) -> CustomConversion:
    """Route an inbound event (`?event=AddToCart`) to one pixel under a platform event name."""
    return await funnel.create_custom_conversion(runtime, campaign_id, body)


@router.get(CUSTOM, response_model=list[CustomConversion], tags=["custom conversions"])
async def list_custom_conversions(campaign_id: str, runtime: RuntimeDep) -> list[CustomConversion]:
    return await funnel.list_custom_conversions(runtime, campaign_id)


@router.get(
    CUSTOM + "/{custom_conversion_id}", response_model=CustomConversion, tags=["custom conversions"]
)
async def get_custom_conversion(
    campaign_id: str, custom_conversion_id: str, runtime: RuntimeDep
) -> CustomConversion:
    return await funnel.get_custom_conversion(runtime, campaign_id, custom_conversion_id)


@router.patch(
    CUSTOM + "/{custom_conversion_id}", response_model=CustomConversion, tags=["custom conversions"]
)
async def update_custom_conversion(
    campaign_id: str, custom_conversion_id: str, body: CustomConversionPatch, runtime: RuntimeDep
) -> CustomConversion:
    return await funnel.update_custom_conversion(runtime, campaign_id, custom_conversion_id, body)


@router.delete(CUSTOM + "/{custom_conversion_id}", status_code=204, tags=["custom conversions"])
async def delete_custom_conversion(
    campaign_id: str, custom_conversion_id: str, runtime: RuntimeDep
) -> Response:
    await funnel.delete_custom_conversion(runtime, campaign_id, custom_conversion_id)
    return Response(status_code=204)


@router.post(
    POSTBACKS, status_code=201, response_model=OutboundPostback, tags=["outbound postbacks"]
)
async def create_outbound_postback(
    campaign_id: str, body: OutboundPostbackIn, runtime: RuntimeDep
) -> OutboundPostback:
    """Forward conversions to a traffic source; the template's macros are checked on save."""
    return await funnel.create_outbound_postback(runtime, campaign_id, body)


@router.get(POSTBACKS, response_model=list[OutboundPostback], tags=["outbound postbacks"])
async def list_outbound_postbacks(campaign_id: str, runtime: RuntimeDep) -> list[OutboundPostback]:
    return await funnel.list_outbound_postbacks(runtime, campaign_id)


@router.get(
    POSTBACKS + "/{postback_id}", response_model=OutboundPostback, tags=["outbound postbacks"]
)
async def get_outbound_postback(
    campaign_id: str, postback_id: str, runtime: RuntimeDep
) -> OutboundPostback:
    return await funnel.get_outbound_postback(runtime, campaign_id, postback_id)


@router.patch(
    POSTBACKS + "/{postback_id}", response_model=OutboundPostback, tags=["outbound postbacks"]
)
async def update_outbound_postback(
    campaign_id: str, postback_id: str, body: OutboundPostbackPatch, runtime: RuntimeDep
) -> OutboundPostback:
    return await funnel.update_outbound_postback(runtime, campaign_id, postback_id, body)


@router.delete(POSTBACKS + "/{postback_id}", status_code=204, tags=["outbound postbacks"])
async def delete_outbound_postback(
    campaign_id: str, postback_id: str, runtime: RuntimeDep
) -> Response:
    await funnel.delete_outbound_postback(runtime, campaign_id, postback_id)
    return Response(status_code=204)
