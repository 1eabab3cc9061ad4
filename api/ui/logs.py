"""The Pixel logs page: every delivery attempt to a pixel, newest first, as the seed's
Pixel Logs lists them. Read through the JSON API's own `pixel_logs`, so the page and
`GET /api/pixel-logs` agree."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import RuntimeDep
from api.routes.campaigns import list_campaigns
from api.routes.reading import pixel_logs, workspace_zone
from api.ui.conversions import PAGE_SIZE, ListFilters, read_filters
from api.ui.pages import ConsoleRoute, SessionDep, render
from relay.models import Platform

router = APIRouter(route_class=ConsoleRoute)


class PixelLogFilters(ListFilters):
    """Campaign, platform, success and the time range; the list's paging."""

    platform: Platform | None = None
    outcome: bool | None = None  # True: delivered attempts only; False: the failed ones


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
            runtime, window, campaign_id=filters.campaign_id, platform=filters.platform
        )
    campaigns = await list_campaigns(runtime)
    return render(
        request,
        "pixel_logs.html",
        422 if errors else 200,
        filters=filters,
        raw=raw,
        errors=errors,
        page=page,
        default_size=PAGE_SIZE,
        campaigns={c.id: c.name for c in campaigns},
        platforms=[(p.value, p.value.capitalize()) for p in Platform],
        outcomes=[("true", "Delivered"), ("false", "Failed")],
        zone=str(await workspace_zone(runtime)),
    )
