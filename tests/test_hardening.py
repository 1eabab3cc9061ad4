"""Edge cases found in review: encodings, repeated parameters, odd numbers, nulls,
attribution windows, orphaned dedup claims, distributed-mode guards."""

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import httpx
import pytest

from relay.domain.models import Click
from relay.store.rows import utc_now
from tests.harness import Relay


async def _status(relay: Relay, query: str) -> tuple[int, dict[str, object]]:
    # Passed as bytes so the test client sends the query exactly as written.
    url = httpx.URL("http://relay.test/postback", query=query.encode("ascii"))
    response = await relay.http.get(url)
    return response.status_code, response.json()


async def test_invalid_utf8_and_repeated_parameters_are_refused(relay: Relay) -> None:
    key = (await relay.network())["postback_key"]
    status, body = await _status(relay, f"key={key}&click_id=%ff%fe")
    assert status == 400 and body["error"]["param"] == "click_id"  # type: ignore[index]
    status, body = await _status(relay, f"key={key}&click_id=a&click_id=b")
    assert status == 400 and body["error"]["param"] == "click_id"  # type: ignore[index]
    status, body = await _status(relay, f"key={key}&click_id=same&click_id=same")
    assert status == 200
    clash = await relay.http.post(f"/postback?key={key}&click_id=q", json={"click_id": "j"})
    assert clash.status_code == 400


@pytest.mark.parametrize(
    ("payout", "stored"),
    [("12.5", "12.500000"), ("-0", "0.000000"), ("0.1234567", "0.123457")],
)
async def test_payouts_that_are_plain_decimals_are_accepted(
    relay: Relay, payout: str, stored: str
) -> None:
    key = (await relay.network())["postback_key"]
    status, body = await _status(relay, f"key={key}&click_id=pay-{payout}&payout={payout}")
    assert status == 200
    await relay.result(str(body["conversion_id"]))
    assert (await relay.conversion(str(body["conversion_id"])))["payout"] == stored


@pytest.mark.parametrize("payout", ["sNaN", "1_000", "1e3", "%D9%A1%D9%A2", "-5", "1,5", "%2B1"])
async def test_payouts_that_are_not_plain_decimals_are_refused(relay: Relay, payout: str) -> None:
    key = (await relay.network())["postback_key"]
    status, body = await _status(relay, f"key={key}&click_id=x&payout={payout}&amount=1")
    assert status == 400 and body["error"]["param"] == "payout"  # type: ignore[index]


async def test_oversized_body_is_refused_before_reading(relay: Relay) -> None:
    response = await relay.http.post(
        "/postback", content=b"x" * 100, headers={"Content-Length": "99999999"}
    )
    assert response.status_code == 413 and response.json()["error"]["param"] == "body"


async def test_admin_inputs_from_review(relay: Relay) -> None:
    campaign = await relay.campaign(currency="eur")
    assert campaign["currency"] == "EUR"
    bad = await relay.http.post(
        "/api/campaigns",
        headers=relay.admin,
        json={"name": "x", "offer_url": "https://a.example", "currency": "ZZZ"},
    )
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "currency"
    nulled = await relay.http.patch(
        f"/api/campaigns/{campaign['id']}", headers=relay.admin, json={"name": None}
    )
    assert nulled.status_code == 422 and nulled.json()["error"]["param"] == "name"
    for field, value in (("ip", "not-an-ip"), ("landing_url", "lander")):
        body = {
            "campaign_id": campaign["id"],
            "ip": "203.0.113.1",
            "user_agent": "UA",
            "landing_url": "https://l.example/",
            field: value,
        }
        response = await relay.http.post("/api/clicks", headers=relay.admin, json=body)
        assert response.status_code == 422 and response.json()["error"]["param"] == field


async def test_event_id_reads_parameters_like_the_postback(relay: Relay) -> None:
    key = (await relay.network())["postback_key"]
    answer = (await relay.postback(key=key, cid=" c-42 ", tid="T9")).json()
    predicted = await relay.http.get("/api/event-id?clickid=c-42&event=&txid=T9")
    assert predicted.json()["event_id"] == answer["conversion_id"]


async def test_clicks_outside_the_attribution_window_are_unattributed(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign(attribution_window_days=7)
    await relay.pixel(campaign["id"], "meta")
    # A click recorded eight days ago (clicks are written once, never rewritten).
    click_id = "old-" + uuid.uuid4().hex
    relay.runtime.traffic.save_click(
        Click(
            click_id=click_id,
            campaign_id=campaign["id"],
            clicked_at=utc_now() - timedelta(days=8),
            user_agent="Mozilla/5.0",
        )
    )
    answer = (await relay.postback(key=network["postback_key"], click_id=click_id)).json()
    assert (await relay.result(answer["conversion_id"])).fires == []
    assert (await relay.conversion(answer["conversion_id"]))["attributed"] is False


def test_distributed_roles_refuse_the_in_process_engine(tmp_path: object) -> None:
    env = {
        **os.environ,
        "RELAY_TEMPORAL_ADDRESS": "127.0.0.1:1",
        "RELAY_ENCRYPTION_KEY": "k1:" + "A" * 43,
        "RELAY_ADMIN_TOKEN": "t",
        "RELAY_DATA_DIR": str(tmp_path),
    }
    env.pop("RELAY_CLICKHOUSE_URL", None)
    for role in ("api", "worker"):
        done = subprocess.run(
            [sys.executable, "-m", "relay", role],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert "RELAY_CLICKHOUSE_URL=http(s)://" in done.stderr
