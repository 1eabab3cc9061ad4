"""Campaigns: the offer URL, currency, repeatable events, the networks allowed to post
(the behaviour is api/services/campaigns.py's)."""

from fastapi import APIRouter, Response

from api.deps import AdminDep, RuntimeDep
from api.schemas import CampaignIn, CampaignPatch
from api.services import campaigns
from relay.domain.models import Campaign

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"], dependencies=[AdminDep])


@router.post("", status_code=201, response_model=Campaign)
async def create_campaign(body: CampaignIn, runtime: RuntimeDep) -> Campaign:
    """Create a campaign; `offer_url` may carry the `{click_id}` macro; `allowed_networks`
    limits who may post its conversions (empty: any network)."""
    return await campaigns.create_campaign(runtime, body)


@router.get("", response_model=list[Campaign])
async def list_campaigns(runtime: RuntimeDep) -> list[Campaign]:
    return await campaigns.list_campaigns(runtime)


@router.get("/{campaign_id}", response_model=Campaign)
async def get_campaign(campaign_id: str, runtime: RuntimeDep) -> Campaign:
    return await campaigns.get_campaign(runtime, campaign_id)


@router.patch("/{campaign_id}", response_model=Campaign)
async def update_campaign(campaign_id: str, body: CampaignPatch, runtime: RuntimeDep) -> Campaign:
    return await campaigns.update_campaign(runtime, campaign_id, body)


@router.delete("/{campaign_id}", status_code=204)
async def delete_campaign(campaign_id: str, runtime: RuntimeDep) -> Response:
    """Delete a campaign: its tracking link stops; recorded conversions and logs stay."""
    await campaigns.delete_campaign(runtime, campaign_id)
    return Response(status_code=204)
