"""Erasing one click's personal data on request: `DELETE /api/clicks/{id}/personal-data`."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from relay.domain.models import Click
from relay.domain.personal_data import CLICK_FIELDS, CONVERSION_FIELDS, ERASED
from relay.store.click_cache import ClickCache
from relay.store.pool import ClickHouse
from relay.store.rows import utc_now
from relay.store.traffic import TrafficStore
from tests.harness import BROWSER_UA, Relay, physical_rows
from tests.support import BLANK_CLICK
from tests.traffic_source import TrafficSource

EMAIL, PHONE, EXTERNAL_ID = "jane.buyer@example.com", "+1 650 555 1212", "lander-user-4242"
VISITOR = {
    "headers": {
        "X-Geo-Country": "US",
        "X-Geo-Region": "CA",
        "X-Geo-City": "Menlo Park",
        "Referer": "https://news.example/story",
        "Cookie": "_fbc=fb.1.1596403881668.IwAR0visitor; _fbp=fb.1.1596403881668.1116446470; "
        "_ttp=ttp-cookie-value",
    },
    "fbclid": "IwAR0visitor",
    "ttclid": "E.C.P.visitor",
    "external_id": EXTERNAL_ID,
    "sub1": "placement-7",
}
# What the visitor's requests carried; none of it may remain after the erasure.
TRACES = ["203.0.113.9", BROWSER_UA, "IwAR0visitor", "E.C.P.visitor", "ttp-cookie-value"]


@pytest.fixture
def source() -> Iterator[TrafficSource]:
    with TrafficSource() as running:
        yield running


def _path(click_id: str) -> str:
    return f"/api/clicks/{click_id}/personal-data"


async def _funnel(relay: Relay, source: TrafficSource) -> tuple[dict[str, Any], str]:
    """A network, and a campaign with a Meta pixel, a TikTok pixel and an outbound
    postback that forwards the click's external ID; returns the network and campaign."""
    network = await relay.network()
    campaign = await relay.campaign()
    for platform in ("meta", "tiktok"):
        await relay.pixel(campaign["id"], platform)
    template = source.url + "/cb?cid={click_id}&uid={external_id}&s1={sub1}"
    await relay.post(f"/api/campaigns/{campaign['id']}/postbacks", {"url_template": template})
    return network, campaign["id"]


async def _visit(relay: Relay, campaign_id: str) -> str:
    query = {k: v for k, v in VISITOR.items() if k != "headers"}
    return await relay.click(campaign_id, headers=VISITOR["headers"], **query)  # type: ignore[arg-type]


async def _erase(relay: Relay, click_id: str) -> dict[str, Any]:
    response = await relay.http.delete(_path(click_id), headers=relay.admin)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_erasure_blanks_the_click_everywhere_and_keeps_every_row(
    relay: Relay, source: TrafficSource, clickhouse: ClickHouse
) -> None:
    network, campaign_id = await _funnel(relay, source)
    click_id = await _visit(relay, campaign_id)
    sale = (
        await relay.postback(
            key=network["postback_key"], click_id=click_id, email=EMAIL, phone=PHONE, txid="O-1"
        )
    ).json()
    await relay.result(sale["conversion_id"])
    before = await relay.conversion(sale["conversion_id"])
    stored = json.dumps(before)
    assert all(trace in stored for trace in TRACES) and EXTERNAL_ID in stored
    assert len(before["fires"]) == 2 and len(before["postbacks"]) == 1

    answer = await _erase(relay, click_id)
    assert answer["click_id"] == click_id
    erased = answer["erased"]
    # The redirect has no ZIP, and no click ID of a platform without a column of its own.
    assert set(erased["click"]) == set(CLICK_FIELDS) - {"zip_code", "click_ids"}
    assert (erased["conversions"], erased["pixel_fires"], erased["postback_attempts"]) == (1, 2, 1)

    click = await relay.runtime.run(relay.runtime.traffic.get_click, click_id)
    assert click is not None
    assert {f: getattr(click, f) for f in CLICK_FIELDS} == BLANK_CLICK
    assert (click.campaign_id, click.country, click.sub1) == (campaign_id, "US", "placement-7")
    after = await relay.conversion(sale["conversion_id"])
    text = json.dumps(after)
    assert not any(trace in text for trace in TRACES) and EXTERNAL_ID not in text
    assert all(after[f] == "" for f in CONVERSION_FIELDS)
    assert all(before[f] for f in CONVERSION_FIELDS if f != "external_id_sha256")
    # The delivery history stays: same rows, same outcomes, the event as sent.
    for kind in ("fires", "postbacks"):
        assert [r["success"] for r in after[kind]] == [r["success"] for r in before[kind]]
    for fire in after["fires"]:
        assert ERASED in fire["request_body"] and sale["conversion_id"] in fire["request_body"]
    assert after["postbacks"][0]["url"].endswith(f"cid={click_id}&uid=%5Berased%5D&s1=placement-7")
    assert physical_rows(clickhouse, sale["conversion_id"]) == 1

    # Dedup and attribution read the same click: a second sale is still a duplicate.
    again = (
        await relay.postback(key=network["postback_key"], click_id=click_id, txid="O-2")
    ).json()
    result = await relay.result(again["conversion_id"])
    recorded = await relay.conversion(again["conversion_id"])
    assert recorded["is_duplicate"] and recorded["attributed"] and not result.fires

    repeat = await _erase(relay, click_id)  # idempotent: nothing is left to erase
    assert repeat["erased"] == {
        "click": [],
        "conversions": 0,
        "pixel_fires": 0,
        "postback_attempts": 0,
    }


async def test_a_conversion_after_the_erasure_sends_nothing_of_the_visitor(
    relay: Relay, source: TrafficSource
) -> None:
    network, campaign_id = await _funnel(relay, source)
    click_id = await _visit(relay, campaign_id)
    assert relay.runtime.clicks.cached(click_id) is not None  # remembered when taken
    await _erase(relay, click_id)

    lead = (
        await relay.postback(key=network["postback_key"], click_id=click_id, event="lead")
    ).json()
    await relay.result(lead["conversion_id"])
    sent = [
        r for r in relay.platforms.requests_for() if lead["conversion_id"] in json.dumps(r.body)
    ]
    assert {r.platform for r in sent} == {"meta", "tiktok"}
    assert not any(trace in json.dumps([r.body for r in sent]) for trace in TRACES)
    [call] = source.calls
    assert call.query["cid"] == [click_id] and "uid" not in call.query  # sent empty


async def test_unknown_clicks_and_callers_without_the_token_are_refused(relay: Relay) -> None:
    unknown = await relay.http.delete(_path(f"clk_{uuid.uuid4().hex}"), headers=relay.admin)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "click_id"
    campaign = await relay.campaign()
    click_id = await relay.click(campaign["id"])
    anonymous = await relay.http.delete(_path(click_id))
    assert anonymous.status_code == 401
    click = await relay.runtime.run(relay.runtime.traffic.get_click, click_id)
    assert click is not None and click.user_agent == BROWSER_UA  # nothing erased
    schema = (await relay.http.get("/openapi.json")).json()
    operation = schema["paths"]["/api/clicks/{click_id}/personal-data"]["delete"]
    assert set(operation["responses"]) == {"200", "401", "404", "429", "503"}


class _ErasedWhileRead(TrafficStore):
    """A store whose click read is overtaken by an erasure, as when a send reads the click
    while the API erases it."""

    def __init__(self, client: ClickHouse) -> None:
        super().__init__(client)
        self.cache: ClickCache | None = None

    def get_click(self, click_id: str) -> Click | None:
        click = super().get_click(click_id)
        assert self.cache is not None
        self.cache.forget(click_id)
        return click


def test_the_cache_keeps_no_click_read_before_an_erasure_or_too_long(
    clickhouse: ClickHouse,
) -> None:
    click = Click(click_id=f"clk_{uuid.uuid4().hex}", campaign_id="c", clicked_at=utc_now())
    TrafficStore(clickhouse).save_click(click)
    racing = _ErasedWhileRead(clickhouse)
    cache = racing.cache = ClickCache(racing)
    assert cache.get(click.click_id) == click
    assert cache.cached(click.click_id) is None  # the read may predate the erasure

    aging = ClickCache(TrafficStore(clickhouse), max_age_s=0.0)
    aging.remember(click)
    assert aging.cached(click.click_id) is None  # a worker elsewhere reads it again
