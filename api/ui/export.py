"""The Conversions list as a CSV file, with the list's filters: what a buyer reconciles
with a network's or a platform's own report.

The export reads up to EXPORT_LIMIT rows, newest first, PAGE at a time, each page starting
after the last row of the one before (received_at, then conversion_id): a conversion
recorded meanwhile cannot shift a page to repeat or skip a row, and the end of the time
range is pinned when the export starts. The names and the first page are read before the
answer starts, so a store that is down gets the console's error page; if it fails later,
the download is cut off and the browser reports it failed. Hashed user identifiers are left
out. A cell a network wrote that a spreadsheet would read as a formula (starting with = + -
@, a tab or a return) is prefixed with an apostrophe. The file starts with a UTF-8 byte
order mark, so Excel reads non-ASCII names."""

import csv
import io
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from api.deps import RuntimeDep
from api.services.campaigns import list_campaigns
from api.services.conversions import ConversionQuery, ConversionSummary, summary
from api.services.networks import list_networks
from api.services.settings import workspace_zone
from api.ui.conversions import (
    EXPORT_LIMIT,
    ConversionFilters,
    conversion_query,
    conversions_page,
    read_filters,
)
from api.ui.pages import ConsoleRoute, SessionDep
from relay.domain.models import Conversion
from relay.runtime import Runtime
from relay.store.attempt_log import AttemptFilter
from relay.store.rows import utc_now

router = APIRouter(route_class=ConsoleRoute)

PAGE = 20_000  # rows a query reads: 100,000 in about 5 s at 1,000,000 conversions in chdb
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


Rows = list[tuple[Conversion, str]]


async def _page(runtime: Runtime, where: AttemptFilter, state: str | None, before: Rows) -> Rows:
    last = (before[-1][0].received_at, before[-1][0].conversion_id) if before else None
    found: Rows = await runtime.run(runtime.traffic.conversions_before, where, state, last, PAGE)
    return found


async def _lines(
    runtime: Runtime,
    names: tuple[dict[str, str], dict[str, str]],
    zone: ZoneInfo,
    first: Rows,
    query: tuple[AttemptFilter, str | None],
) -> AsyncIterator[str]:
    campaigns, networks = names
    where, state = query
    yield "\ufeff" + _line(list(COLUMNS))
    page, sent = first, 0
    while page:
        for conversion, delivery_state in page[: EXPORT_LIMIT - sent]:
            yield _line(row(summary(conversion, delivery_state, zone), campaigns, networks))
        sent += len(page)
        if sent >= EXPORT_LIMIT or len(page) < PAGE:
            return
        page = await _page(runtime, where, state, page)


@router.get("/conversions.csv")
async def conversions_csv(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The filtered conversions as CSV (up to EXPORT_LIMIT rows); with a bad filter, the
    list page with the error next to its field (422)."""
    raw = dict(request.query_params)
    filters, errors = read_filters(ConversionFilters, raw)
    if errors:
        return await conversions_page(request, runtime, session)
    now = utc_now()
    if filters.until is None:  # pinned: what arrives during the export is not in it
        filters = filters.model_copy(update={"until": now})
    zone = await workspace_zone(runtime)
    where, state = ConversionQuery(**conversion_query(filters)).where(filters.window(), zone)
    first = await _page(runtime, where, state, [])
    campaigns = {c.id: c.name for c in await list_campaigns(runtime)}
    networks = {n.id: n.name for n in await list_networks(runtime)}
    name = f"relay-conversions-{now.astimezone(zone):%Y%m%d-%H%M}.csv"
    return StreamingResponse(
        _lines(runtime, (campaigns, networks), zone, first, (where, state)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
