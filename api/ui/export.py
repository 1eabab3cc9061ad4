"""The Conversions list as a CSV file, with the list's filters: what a buyer reconciles
with a network's or a platform's own report.

The export reads the list page by page up to EXPORT_LIMIT rows, newest first, with the end
of its time range pinned when it starts (so conversions received meanwhile do not shift the
pages). Hashed user identifiers are left out. A cell a network wrote that a spreadsheet
would read as a formula (starting with = + - @, a tab or a return) is prefixed with an
apostrophe."""

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from api.deps import RuntimeDep
from api.routes.campaigns import list_campaigns
from api.routes.networks import list_networks
from api.routes.reading import ConversionSummary, list_conversions, workspace_zone
from api.ui.conversions import (
    EXPORT_LIMIT,
    ConversionFilters,
    conversion_query,
    conversions_page,
    read_filters,
)
from api.ui.pages import ConsoleRoute, SessionDep
from relay.runtime import Runtime

router = APIRouter(route_class=ConsoleRoute)

PAGE = 20_000  # rows a query reads: 100,000 in about 6 s at 1,000,000 conversions in chdb
COLUMNS = (
    "received_at",
    "conversion_id",
    "event",
    "payout",
    "currency",
    "transaction_id",
    "click_id",
    "campaign",
    "campaign_id",
    "network",
    "network_id",
    "delivery_state",
    "duplicate",
    "attributed",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """A text cell no spreadsheet reads as a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def row(c: ConversionSummary, campaigns: dict[str, str], networks: dict[str, str]) -> list[str]:
    return [
        c.received_at.isoformat(),
        c.conversion_id,
        cell(c.event_type),
        "" if c.payout is None else format(c.payout.normalize(), "f"),
        c.currency,
        cell(c.txid),
        cell(c.click_id),
        cell(campaigns.get(c.campaign_id, "")),
        c.campaign_id,
        cell(networks.get(c.network_id, "")),
        c.network_id,
        c.delivery_state.value,
        "yes" if c.is_duplicate else "no",
        "yes" if c.attributed else "no",
    ]


def _line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


async def _rows(runtime: Runtime, filters: ConversionFilters) -> AsyncIterator[str]:
    campaigns = {c.id: c.name for c in await list_campaigns(runtime)}
    networks = {n.id: n.name for n in await list_networks(runtime)}
    yield _line(list(COLUMNS))
    for offset in range(0, EXPORT_LIMIT, PAGE):
        window = filters.window()
        window.limit, window.offset = min(PAGE, EXPORT_LIMIT - offset), offset
        page = await list_conversions(runtime, window, **conversion_query(filters))
        for c in page.items:
            yield _line(row(c, campaigns, networks))
        if offset + len(page.items) >= page.total or not page.items:
            return


@router.get("/conversions.csv")
async def conversions_csv(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The filtered conversions as CSV (up to EXPORT_LIMIT rows); with a bad filter, the
    list page with the error next to its field (422)."""
    raw = dict(request.query_params)
    filters, errors = read_filters(ConversionFilters, raw)
    if errors:
        return await conversions_page(request, runtime, session)
    now = datetime.now(UTC)
    if filters.until is None:  # pinned: what arrives during the export is not in it
        filters = filters.model_copy(update={"until": now})
    zone = await workspace_zone(runtime)
    name = f"relay-conversions-{now.astimezone(zone):%Y%m%d-%H%M}.csv"
    return StreamingResponse(
        _rows(runtime, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
