"""The Campaigns pages: the list with the new-campaign form, and one campaign's facts with
its edit and delete forms. Everything goes through the services the JSON API calls too
(api/services/campaigns.py) and its request models, so the pages and the API agree; the
campaign's pixels, custom conversions and outbound postbacks are in `campaign_page`."""

import asyncio
import functools

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from api.deps import RuntimeDep
from api.schemas import CampaignIn, CampaignPatch
from api.services.campaigns import (
    create_campaign,
    delete_campaign,
    list_campaigns,
    update_campaign,
)
from api.services.pixels import list_pixels
from api.services.settings import workspace_zone
from api.ui import campaign_deletes, campaign_funnel, campaign_page
from api.ui.campaign_forms import (
    NOTICES,
    FormState,
    Refusal,
    kept,
    listed,
    network_boxes,
    submitted,
    ticked_networks,
)
from api.ui.campaign_page import CAMPAIGN_FIELDS, change, network_choices, to_campaign
from api.ui.pages import ConsoleRoute, FormDep, SessionDep, render
from api.ui.recent import recent_activity
from relay.runtime import Runtime
from relay.store.rows import utc_now

router = APIRouter(route_class=ConsoleRoute)
router.include_router(campaign_page.router)
router.include_router(campaign_funnel.router)
router.include_router(campaign_deletes.router)

NEW_CAMPAIGN = FormState({"currency": "USD", "attribution_window_days": "30"})


def _kept(form: dict[str, str]) -> dict[str, str]:
    """A refused campaign form's values, its ticked networks too."""
    return kept(form, CAMPAIGN_FIELDS) | network_boxes(ticked_networks(form))


def _campaign_body(form: dict[str, str]) -> dict[str, object]:
    """The API's body from the form: empty fields left to the API's defaults (a new
    campaign) or unchanged (an edit); events comma-separated; the networks ticked (none:
    any network)."""
    body: dict[str, object] = {
        name: form[name] for name in CAMPAIGN_FIELDS if form.get(name, "").strip()
    }
    body["repeatable_events"] = listed(form.get("repeatable_events", ""))
    body["allowed_networks"] = ticked_networks(form)
    body.setdefault("name", form.get("name", ""))
    body.setdefault("offer_url", form.get("offer_url", ""))
    return body


async def _list_page(
    request: Request, runtime: Runtime, status: int = 200, new: FormState = NEW_CAMPAIGN
) -> Response:
    campaigns = await list_campaigns(runtime)
    pixels = await asyncio.gather(*(list_pixels(runtime, c.id) for c in campaigns))
    zone = await workspace_zone(runtime)
    rows = [
        (c, len(found), c.created_at.astimezone(zone))
        for c, found in zip(campaigns, pixels, strict=True)
    ]
    recent = await recent_activity(runtime, "campaign_id", utc_now(), zone)
    return render(
        request,
        "campaigns.html",
        status,
        rows=rows,
        recent=recent,
        new=new,
        networks=await network_choices(runtime),
        zone=str(zone),
        notice=NOTICES.get(request.query_params.get("done", ""), ""),
    )


@router.get("/campaigns")
async def campaigns_page(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Every campaign, and the form for a new one."""
    return await _list_page(request, runtime)


@router.post("/campaigns")
async def new_campaign(request: Request, runtime: RuntimeDep, form: FormDep) -> Response:
    """Create a campaign as `POST /api/campaigns` does, then show it (303); a refused form
    comes back with the API's messages next to its fields."""
    try:
        created = await submitted(
            CampaignIn, _campaign_body(form), lambda body: create_campaign(runtime, body)
        )
    except Refusal as exc:
        state = FormState(_kept(form), exc.errors)
        return await _list_page(request, runtime, exc.status, state)
    return to_campaign(created.id, "created")


@router.post("/campaigns/{campaign_id}")
async def edit_campaign(
    request: Request, campaign_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Change a campaign as `PATCH /api/campaigns/{id}` does."""
    call = functools.partial(update_campaign, runtime, campaign_id)
    submit = (CampaignPatch, _campaign_body(form), call)
    refill = ("campaign", _kept(form))
    return await change(request, runtime, campaign_id, refill, submit, "saved")


@router.post("/campaigns/{campaign_id}/delete")
async def remove_campaign(
    request: Request, campaign_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Delete a campaign once the form's `confirm` box is ticked: its tracking link stops;
    its recorded conversions and logs stay."""
    refused = await campaign_deletes.unconfirmed(request, runtime, campaign_id, form, "delete")
    if refused is not None:
        return refused
    await delete_campaign(runtime, campaign_id)
    return RedirectResponse("/ui/campaigns?done=deleted", status_code=303)
