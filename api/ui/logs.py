"""The Pixel logs and Postback logs pages: every delivery attempt to a pixel or a traffic
source's outbound postback, newest first, as the seed's Pixel Logs and Postback Logs list
them. Read through the services the JSON API calls too (api/services/logs.py's
`pixel_logs` and `postback_logs`), so the pages and `GET /api/pixel-logs` and
`GET /api/postback-logs` agree."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import RuntimeDep
from api.services.logs import pixel_logs, postback_logs
from api.ui.conversions import ListFilters, Text, read_filters, render_list
from api.ui.pages import ConsoleRoute, SessionDep, platform_label
from relay.domain.events import normalize_event_type
from relay.domain.models import Platform

router = APIRouter(route_class=ConsoleRoute)


OUTCOMES = [("true", "Delivered"), ("false", "Failed")]


class PostbackLogFilters(ListFilters):
    """Campaign, network, event, success and the time range; the list's paging."""

    network_id: Text = None
    event: Text = None  # postback logs: the conversion's event; pixel logs: the event sent
    outcome: bool | None = None  # True: delivered attempts only; False: the failed ones


class PixelLogFilters(PostbackLogFilters):
    platform: Platform | None = None


@router.get("/pixel-logs")
async def pixel_logs_page(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Pixel delivery attempts with the filters' form; a bad filter is shown next to its
    field (422) and lists nothing."""
    raw = dict(request.query_params)
    filters, errors = read_filters(PixelLogFilters, raw)
    page = None
    if not errors:
        window = filters.window(success=filters.outcome)
        page = await pixel_logs(
            runtime,
            window,
            campaign_id=filters.campaign_id,
            platform=filters.platform,
            network_id=filters.network_id,
            event_name=filters.event,
        )
    platforms = [(p.value, platform_label(p)) for p in Platform]
    form = (filters, raw, errors)
    return await render_list(
        request,
        runtime,
        "pixel_logs.html",
        form,
        page,
        platforms=platforms,
        outcomes=OUTCOMES,
    )


@router.get("/postback-logs")
async def postback_logs_page(
    request: Request, runtime: RuntimeDep, session: SessionDep
) -> Response:
    """Outbound postback attempts with the filters' form, as the Pixel logs page."""
    raw = dict(request.query_params)
    filters, errors = read_filters(PostbackLogFilters, raw)
    page = None
    if not errors:
        window = filters.window(success=filters.outcome)
        page = await postback_logs(
            runtime,
            window,
            campaign_id=filters.campaign_id,
            network_id=filters.network_id,
            event_type=normalize_event_type(filters.event) if filters.event else None,
        )
    form = (filters, raw, errors)
    return await render_list(
        request,
        runtime,
        "postback_logs.html",
        form,
        page,
        outcomes=OUTCOMES,
    )
