"""Campaigns: the offer URL, currency, repeatable events."""

from fastapi import APIRouter, Response

from api.crud import fetch, patched, remove, save
from api.deps import AdminDep, RuntimeDep
from api.schemas import CampaignIn, CampaignPatch
from relay.ids import new_resource_id
from relay.models import Campaign
from relay.platforms.event_names import normalize_event_type
from relay.store.rows import utc_now

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"], dependencies=[AdminDep])


@router.post("", status_code=201, response_model=Campaign)
async def create_campaign(body: CampaignIn, runtime: RuntimeDep) -> Campaign:
    """Create a campaign; `offer_url` may carry the `{click_id}` macro."""
    now = utc_now()
    fields = body.model_dump()
    fields["repeatable_events"] = [normalize_event_type(e) for e in body.repeatable_events]
    campaign = Campaign(id=new_resource_id("cmp"), created_at=now, updated_at=now, **fields)
    return await save(runtime, campaign)


@router.get("", response_model=list[Campaign])
async def list_campaigns(runtime: RuntimeDep) -> list[Campaign]:
    return await runtime.run(runtime.config.find, Campaign)


@router.get("/{campaign_id}", response_model=Campaign)
async def get_campaign(campaign_id: str, runtime: RuntimeDep) -> Campaign:
    return await fetch(runtime, Campaign, campaign_id, "campaign")


@router.patch("/{campaign_id}", response_model=Campaign)
async def update_campaign(campaign_id: str, body: CampaignPatch, runtime: RuntimeDep) -> Campaign:
    current = await fetch(runtime, Campaign, campaign_id, "campaign")
    changes = {}
    if body.repeatable_events is not None:
        changes["repeatable_events"] = [normalize_event_type(e) for e in body.repeatable_events]
    return await save(runtime, patched(current, body, changes=changes))


@router.delete("/{campaign_id}", status_code=204)
async def delete_campaign(campaign_id: str, runtime: RuntimeDep) -> Response:
    """Delete a campaign: its tracking link stops; recorded conversions and logs stay."""
    await fetch(runtime, Campaign, campaign_id, "campaign")
    await remove(runtime, "campaigns", campaign_id)
    return Response(status_code=204)
