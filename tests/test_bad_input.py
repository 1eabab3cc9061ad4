"""Bad postbacks and admin requests: a 4xx JSON error naming the problem, nothing written."""

import pytest

from tests.harness import Relay, network_conversions


@pytest.mark.parametrize(
    ("params", "status", "param", "words"),
    [
        ({"payout": "1"}, 400, "click_id", "required"),
        ({"click_id": "c1", "payout": "ten"}, 400, "payout", "number"),
        ({"click_id": "c1", "payout": "NaN"}, 400, "payout", "decimal number"),
        ({"click_id": "c1", "payout": "-4"}, 400, "payout", "0"),
        ({"click_id": "c1", "currency": "XYZ"}, 400, "currency", "ISO 4217"),
        ({"click_id": "c" * 129}, 400, "click_id", "longer than 128"),
        ({"click_id": "c1", "txid": "t" * 500}, 400, "txid", "longer than 128"),
        ({"click_id": "c1", "email": "e" * 300}, 400, "email", "longer than 254"),
        ({"click_id": "c1", "cid": "c2"}, 400, "click_id", "conflicting"),
        ({"click_id": "c1", "key": "wrong-key"}, 401, "key", "does not match"),
    ],
)
async def test_bad_postbacks_are_rejected_and_nothing_is_written(
    relay: Relay, params: dict[str, str], status: int, param: str, words: str
) -> None:
    network = await relay.network()
    response = await relay.postback(**{"key": network["postback_key"], **params})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param
    assert words in error["message"]
    assert network_conversions(relay.runtime.clickhouse, network["id"]) == 0


async def test_missing_key_is_401(relay: Relay) -> None:
    response = await relay.postback(click_id="abc")
    assert response.status_code == 401
    assert response.json()["error"]["param"] == "key"


async def test_json_and_form_postbacks_are_validated_the_same(relay: Relay) -> None:
    network = await relay.network()
    bad = {"key": network["postback_key"], "click_id": "c1", "amount": "lots"}
    as_json = await relay.http.post("/postback", json=bad)
    as_form = await relay.http.post("/postback", data=bad)
    for response in (as_json, as_form):
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "payout"
    not_object = await relay.http.post("/postback", json=["x"])
    assert not_object.status_code == 400 and not_object.json()["error"]["param"] == "body"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/api/campaigns", {"name": "x", "offer_url": ""}, "offer_url"),
        ("/api/campaigns", {"name": "x", "offer_url": "ftp://nope"}, "offer_url"),
        ("/api/campaigns", {"name": "", "offer_url": "https://a.example"}, "name"),
        (
            "/api/campaigns",
            {"name": "x", "offer_url": "https://a.example", "currency": "dollars"},
            "currency",
        ),
        ("/api/networks", {"name": "x", "surprise": 1}, "surprise"),
    ],
)
async def test_admin_validation_names_the_field(
    relay: Relay, path: str, body: dict[str, object], param: str
) -> None:
    response = await relay.http.post(path, json=body, headers=relay.admin)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == param


async def test_pixel_validation_and_write_only_token(relay: Relay) -> None:
    campaign = await relay.campaign()
    path = f"/api/campaigns/{campaign['id']}/pixels"
    bad = {"platform": "snapchat", "platform_pixel_id": "1", "access_token": "x" * 20, "name": "p"}
    response = await relay.http.post(path, json=bad, headers=relay.admin)
    assert response.status_code == 422 and response.json()["error"]["param"] == "platform"
    pixel = await relay.pixel(campaign["id"], "meta", access_token="TOKEN-NEVER-SHOWN-1")
    listed = await relay.http.get(path, headers=relay.admin)
    assert "TOKEN-NEVER-SHOWN" not in listed.text and "access_token" not in listed.text
    stored = relay.runtime.clickhouse.query(
        "SELECT token_ciphertext FROM pixels WHERE id = {id:String}", parameters={"id": pixel["id"]}
    ).result_rows[0][0]
    assert "TOKEN-NEVER-SHOWN" not in stored
    assert relay.runtime.keys.decrypt(stored, pixel["id"]) == "TOKEN-NEVER-SHOWN-1"


async def test_admin_api_needs_the_bearer_token(relay: Relay) -> None:
    assert (await relay.http.get("/api/networks")).status_code == 401
    wrong = await relay.http.get("/api/networks", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert (
        await relay.http.get("/api/campaigns/cmp_missing", headers=relay.admin)
    ).status_code == 404


async def test_unknown_campaign_click_is_404(relay: Relay) -> None:
    response = await relay.http.get("/c/cmp_nope")
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "campaign_id"
