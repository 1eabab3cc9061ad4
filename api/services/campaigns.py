"""Campaigns: the offer URL, currency, repeatable events, the networks allowed to post."""

from api.crud import fetch, patched, remove, save
from api.schemas import CampaignIn, CampaignPatch
from relay.core.errors import InvalidField
from relay.core.ids import new_resource_id
from relay.domain.events import normalize_event_type
from relay.domain.models import Campaign, Network
from relay.runtime import Runtime
from relay.store.rows import utc_now


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


async def create_campaign(runtime: Runtime, body: CampaignIn) -> Campaign:
    """A new campaign, its events normalized and its allowed networks checked."""
    now = utc_now()
    fields = body.model_dump()
    fields["repeatable_events"] = [normalize_event_type(e) for e in body.repeatable_events]
    fields["allowed_networks"] = await _networks(runtime, body.allowed_networks)
    campaign = Campaign(id=new_resource_id("cmp"), created_at=now, updated_at=now, **fields)
    return await save(runtime, campaign)


async def list_campaigns(runtime: Runtime) -> list[Campaign]:
    """Every live campaign."""
    return await runtime.run(runtime.config.find, Campaign)


async def get_campaign(runtime: Runtime, campaign_id: str) -> Campaign:
    """The campaign, or a 404 naming `campaign_id`."""
    return await fetch(runtime, Campaign, campaign_id, "campaign")


async def update_campaign(runtime: Runtime, campaign_id: str, body: CampaignPatch) -> Campaign:
    """The campaign with the fields `body` sets changed (events normalized, networks
    checked: one it lists already may stay although deleted since)."""
    current = await get_campaign(runtime, campaign_id)
    changes = {}
    if body.repeatable_events is not None:
        changes["repeatable_events"] = [normalize_event_type(e) for e in body.repeatable_events]
    if body.allowed_networks is not None:
        listed = current.allowed_networks
        changes["allowed_networks"] = await _networks(runtime, body.allowed_networks, listed)
    return await save(runtime, patched(current, body, changes=changes))


async def delete_campaign(runtime: Runtime, campaign_id: str) -> None:
    """Delete a campaign (a 404 if there is none): its tracking link stops; recorded
    conversions and logs stay."""
    await get_campaign(runtime, campaign_id)
    await remove(runtime, "campaigns", campaign_id)
