"""The console's CSV export of the Conversions list (its filters, every page, formula-safe
cells, no hashed identifiers)."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from api.ui.export import COLUMNS
from relay.store.attempt_log import AttemptFilter
from relay.store.pool import ClickHouse
from relay.store.traffic import TrafficStore
from tests.console import sign_in
from tests.harness import Relay


async def test_the_filtered_list_downloads_as_csv(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    network, campaign = await relay.network(), await relay.campaign(name="Export test")
    order = uuid.uuid4().hex[:8]
    ids = []
    for txid in (f"A-{order}", f'=HYPERLINK("x")-{order}', f"C-{order}"):
        click_id = await relay.click(campaign["id"])
        answer = await relay.postback(
            key=network["postback_key"],
            click_id=click_id,
            txid=txid,
            payout="12.50",
            email="jane@example.com",
        )
        ids.append(answer.json()["conversion_id"])
    for conversion_id in ids:
        await relay.result(conversion_id)
    await sign_in(relay)
    listed = await relay.http.get("/ui/conversions", params={"campaign_id": campaign["id"]})
    link = f'href="/ui/conversions.csv?campaign_id={campaign["id"]}" download'
    assert link in listed.text and "Download these 3 as CSV" in listed.text

    monkeypatch.setattr("api.ui.export.PAGE", 2)  # three rows: two pages
    answer = await relay.http.get("/ui/conversions.csv", params={"campaign_id": campaign["id"]})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith('attachment; filename="relay-')
    assert answer.headers["cache-control"] == "no-store"
    assert answer.text.startswith("\ufeff")  # for Excel: the file is UTF-8
    header, *rows = list(csv.reader(io.StringIO(answer.text.removeprefix("\ufeff"))))
    assert header == list(COLUMNS)
    found = [dict(zip(header, row, strict=True)) for row in rows]
    assert [r["conversion_id"] for r in found] == ids[::-1]  # newest first, each once
    assert found[1]["transaction_id"] == f'\'=HYPERLINK("x")-{order}'  # not a formula
    assert {(r["payout"], r["currency"], r["campaign"], r["network"]) for r in found} == {
        ("12.5", "USD", "Export test", network["name"])
    }
    assert "jane" not in answer.text and "sha256" not in answer.text

    one = await relay.http.get("/ui/conversions.csv", params={"find": f"A-{order}"})
    assert [r[1] for r in csv.reader(io.StringIO(one.text))][1:] == ids[:1]
    assert len(answer.text.splitlines()) == 4  # the header and three rows, each once
    bad = await relay.http.get("/ui/conversions.csv", params={"state": "lost"})
    assert bad.status_code == 422 and 'id="state-error"' in bad.text


async def test_the_export_needs_a_session(relay: Relay) -> None:
    answer = await relay.http.get("/ui/conversions.csv", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/sign-in?next=")


def test_pages_follow_the_last_row_so_ties_are_neither_repeated_nor_skipped(
    store: ClickHouse,
) -> None:
    """Rows received in the same millisecond, read two at a time, and one recorded between
    two pages (newer than the first): each row once, in (received_at, ID) order."""
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    traffic = TrafficStore(store)

    def insert(conversion_id: str, received: datetime) -> None:
        row = {"conversion_id": conversion_id, "received_at": received, "attributed": 1}
        store.insert("conversions", [list(row.values())], column_names=list(row))

    for n in range(5):
        insert(f"c{n}", at)
    pages, before = [], None
    while page := traffic.conversions_before(AttemptFilter(), None, before, 2):
        pages.append([c.conversion_id for c, _ in page])
        before = (page[-1][0].received_at, page[-1][0].conversion_id)
        if len(pages) == 1:
            insert("c_new", at + timedelta(seconds=1))  # would shift an offset by one
    assert pages == [["c4", "c3"], ["c2", "c1"], ["c0"]]
