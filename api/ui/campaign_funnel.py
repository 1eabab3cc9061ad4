"""A campaign's custom conversions and outbound postbacks, added and edited from its page
through the services the JSON API calls too (api/services/funnel.py); deleted in
`campaign_deletes`.

An outbound postback's URL template may carry a secret in its query (an API key), which
the page never shows (it shows `redact_url`'s form). So its edit form's URL field starts
empty, and empty means "keep the current URL"; a new URL is typed whole. A URL sent with
`[REDACTED]` in it (pasted from the page) is refused rather than stored."""

import functools

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import RuntimeDep
from api.schemas import (
    CustomConversionIn,
    CustomConversionPatch,
    OutboundPostbackIn,
    OutboundPostbackPatch,
)
from api.services.funnel import (
    create_custom_conversion,
    create_outbound_postback,
    update_custom_conversion,
    update_outbound_postback,
)
from api.ui.campaign_forms import FormState, kept, listed
from api.ui.campaign_page import change, show_campaign
from api.ui.pages import ConsoleRoute, FormDep
from relay.destinations.base import REDACTED

router = APIRouter(route_class=ConsoleRoute)

CUSTOM_FIELDS = ("inbound_event", "pixel", "event_name")
POSTBACK_FIELDS = ("url_template", "method", "events")
PASTED_REDACTED = (
    f"this URL contains {REDACTED}, copied from the page: leave the field empty to keep the "
    f"current URL, or type the whole new URL with the real values"
)


@router.post("/campaigns/{campaign_id}/custom-conversions")
async def add_custom_conversion(
    request: Request, campaign_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Add a custom conversion as `POST /api/campaigns/{id}/custom-conversions` does."""
    values = kept(form, CUSTOM_FIELDS)
    call = functools.partial(create_custom_conversion, runtime, campaign_id)
    submit = (CustomConversionIn, dict(values), call)
    refill = ("new-custom-conversion", values)
    return await change(request, runtime, campaign_id, refill, submit, "custom-conversion-added")


@router.post("/campaigns/{campaign_id}/custom-conversions/{custom_conversion_id}")
async def edit_custom_conversion(
    request: Request,
    campaign_id: str,
    custom_conversion_id: str,
    runtime: RuntimeDep,
    form: FormDep,
) -> Response:
    """Change a custom conversion as `PATCH` does (every field sent: an empty one is refused
    as the API refuses it)."""
    values = kept(form, CUSTOM_FIELDS)
    call = functools.partial(update_custom_conversion, runtime, campaign_id, custom_conversion_id)
    submit = (CustomConversionPatch, dict(values), call)
    refill = (f"custom-{custom_conversion_id}", values)
    return await change(request, runtime, campaign_id, refill, submit, "custom-conversion-saved")


@router.post("/campaigns/{campaign_id}/postbacks")
async def add_outbound_postback(
    request: Request, campaign_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Add an outbound postback as `POST /api/campaigns/{id}/postbacks` does."""
    values = kept(form, POSTBACK_FIELDS)
    call = functools.partial(create_outbound_postback, runtime, campaign_id)
    submit = (OutboundPostbackIn, {**values, "events": listed(values["events"])}, call)
    refill = ("new-outbound-postback", values)
    return await change(request, runtime, campaign_id, refill, submit, "postback-added")


@router.post("/campaigns/{campaign_id}/postbacks/{postback_id}")
async def edit_outbound_postback(
    request: Request, campaign_id: str, postback_id: str, runtime: RuntimeDep, form: FormDep
) -> Response:
    """Change an outbound postback as `PATCH` does; an empty URL field keeps the current
    URL (never shown: it may hold a secret)."""
    values = kept(form, POSTBACK_FIELDS)
    refill = (f"postback-{postback_id}", values)
    if REDACTED in values["url_template"]:
        state = FormState(values, {"url_template": PASTED_REDACTED})
        return await show_campaign(request, runtime, campaign_id, 422, (refill[0], state))
    body = {"method": values["method"], "events": listed(values["events"])}
    if values["url_template"].strip():
        body["url_template"] = values["url_template"]
    call = functools.partial(update_outbound_postback, runtime, campaign_id, postback_id)
    submit = (OutboundPostbackPatch, body, call)
    return await change(request, runtime, campaign_id, refill, submit, "postback-saved")
