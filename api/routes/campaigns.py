"""Campaigns: the offer URL, currency, repeatable events, the networks allowed to post."""

from fastapi import APIRouter, Response

from api.crud import fetch, patched, remove, save
from api.deps import AdminDep, RuntimeDep
from api.schemas import CampaignIn, CampaignPatch
from relay.core.errors import InvalidField
from relay.core.ids import new_resource_id
from relay.domain.events import normalize_event_type
from relay.domain.models import Campaign, Network
from relay.runtime import Runtime
from relay.store.rows import utc_now

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"], dependencies=[AdminDep])


async def _networks(
    runtime: Runtime, network_ids: list[str], listed: list[str] | None = None
) -> list[str]:
    """The allowed networks, each once, in the order given; one that is not a network (nor
    `listed` already: a network deleted since stays until it is taken off) is a 422 naming
    `allowed_networks`."""
    unique = list(dict.fromkeys(network_ids))
    if unique:
        known = {n.id for n in await runtime.run(runtime.config.find, Network)}
        missing = [n for n in unique if n not in known and n not in (listed or [])]
        if missing:
            message = f"allowed_networks: no network has the ID {missing[0]!r}"
            raise InvalidField(message, "allowed_networks")
    return unique


@router.post("", status_code=201, response_model=Campaign)
async def create_campaign(body: CampaignIn, runtime: RuntimeDep) -> Campaign:
    """Create a campaign; `offer_url` may carry the `{click_id}` macro; `allowed_networks`
    limits who may post its conversions (empty: any network)."""
    now = utc_now()
    fields = body.model_dump()
    fields["repeatable_events"] = [normalize_event_type(e) for e in body.repeatable_events]
    fields["allowed_networks"] = await _networks(runtime, body.allowed_networks)
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
    if body.allowed_networks is not None:
        listed = current.allowed_networks
        changes["allowed_networks"] = await _networks(runtime, body.allowed_networks, listed)
    return await save(runtime, patched(current, body, changes=changes))


@router.delete("/{campaign_id}", status_code=204)
async def delete_campaign(campaign_id: str, runtime: RuntimeDep) -> Response:
    """Delete a campaign: its tracking link stops; recorded conversions and logs stay."""
    await fetch(runtime, Campaign, campaign_id, "campaign")
    await remove(runtime, "campaigns", campaign_id)
    return Response(status_code=204)
