"""Deleting a campaign's pixels, custom conversions and outbound postbacks from its page,
through the services the JSON API calls too. Each delete form has a "Yes, delete" box that must be
ticked: a pixel deleted stops its deliveries at once, and nothing brings it back."""

import functools
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import RuntimeDep
from api.services.funnel import delete_custom_conversion, delete_outbound_postback
from api.services.pixels import delete_pixel
from api.ui.campaign_forms import FormState, ticked
from api.ui.campaign_page import show_campaign, to_campaign
from api.ui.pages import ConsoleRoute, FormDep
from relay.runtime import Runtime

router = APIRouter(route_class=ConsoleRoute)

UNCONFIRMED = "tick the box to confirm the deletion"


async def confirmed_delete(
    request: Request,
    runtime: Runtime,
    campaign_id: str,
    form: dict[str, str],
    which: tuple[str, str],
    delete: Callable[[], Awaitable[object]],
) -> Response:
    """`delete` once the form's `confirm` box is ticked, then back to the page with the
    notice `which[1]`; unticked, the page again (422) with the message next to the box of
    the form `which[0]` names, and nothing deleted."""
    form_name, done = which
    refused = await unconfirmed(request, runtime, campaign_id, form, form_name)
    if refused is not None:
        return refused
    await delete()
    return to_campaign(campaign_id, done)


async def unconfirmed(
    request: Request, runtime: Runtime, campaign_id: str, form: dict[str, str], form_name: str
) -> Response | None:
    """The campaign's page again (422) with the message next to the box of the form
    `form_name` names, if its `confirm` box is not ticked; else None."""
    if ticked(form, "confirm"):
        return None
    refused = FormState(errors={"confirm": UNCONFIRMED})
    return await show_campaign(request, runtime, campaign_id, 422, (form_name, refused))


@router.post("/campaigns/{campaign_id}/pixels/{pixel_id}/delete")
async def remove_pixel(
    request: Request, campaign_id: str, pixel_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Delete a pixel as `DELETE /api/campaigns/{id}/pixels/{pixel_id}` does."""
    which = (f"delete-pixel-{pixel_id}", "pixel-deleted")
    delete = functools.partial(delete_pixel, runtime, campaign_id, pixel_id)
    return await confirmed_delete(request, runtime, campaign_id, form, which, delete)


@router.post("/campaigns/{campaign_id}/custom-conversions/{custom_conversion_id}/delete")
async def remove_custom_conversion(
    request: Request,
    campaign_id: str,
    custom_conversion_id: str,
    runtime: RuntimeDep,
    form: FormDep,
) -> Response:
    which = (f"delete-custom-{custom_conversion_id}", "custom-conversion-deleted")
    delete = functools.partial(delete_custom_conversion, runtime, campaign_id, custom_conversion_id)
    return await confirmed_delete(request, runtime, campaign_id, form, which, delete)


@router.post("/campaigns/{campaign_id}/postbacks/{postback_id}/delete")
async def remove_outbound_postback(
    request: Request, campaign_id: str, postback_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    which = (f"delete-postback-{postback_id}", "postback-deleted")
    delete = functools.partial(delete_outbound_postback, runtime, campaign_id, postback_id)
    return await confirmed_delete(request, runtime, campaign_id, form, which, delete)
