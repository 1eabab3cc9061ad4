"""Bad postbacks, clicks and admin requests: a 4xx JSON error naming the problem, nothing
written."""

import pytest

from tests.harness import BROWSER_UA, Relay, network_conversions


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


def _clicks_of(relay: Relay, campaign_id: str) -> int:
    result = relay.runtime.clickhouse.query(
        "SELECT count() FROM clicks WHERE campaign_id = {c:String}", parameters={"c": campaign_id}
    )
    return int(result.result_rows[0][0])


@pytest.mark.parametrize(
    ("query", "cookie", "param"),
    [
        ("sub1=ad%E2%80%AEgnp.exe", "", "sub1"),  # U+202E RIGHT-TO-LEFT OVERRIDE
        ("sub3=a%E2%81%A7b", "", "sub3"),  # U+2067 RIGHT-TO-LEFT ISOLATE
        ("sub5=a%00b", "", "sub5"),  # C0
        ("sub2=line%E2%80%A8break", "", "sub2"),  # U+2028 LINE SEPARATOR
        ("fbclid=IwAR%E2%80%8Bx", "", "fbclid"),  # U+200B: identifiers refuse invisibles
        ("ttclid=E.C.P%C2%9Bx", "", "ttclid"),  # C1
        ("external_id=u%EF%BB%BF1", "", "external_id"),  # U+FEFF
        ("", "_fbc=fb.1.1.x\x85y", "_fbc"),  # C1 in a cookie
        ("", '_fbp="fb.1.\\342\\200\\256x"', "_fbp"),  # U+202E's bytes, quoted
        ("", "_ttp=t\x1bp", "_ttp"),
    ],
)
async def test_a_click_with_control_bidi_or_invisible_characters_is_refused(
    relay: Relay, query: str, cookie: str, param: str
) -> None:
    campaign = await relay.campaign()
    headers = {"User-Agent": BROWSER_UA, **({"Cookie": cookie} if cookie else {})}
    raw = {k.encode("ascii"): v.encode("latin-1") for k, v in headers.items()}
    response = await relay.http.get(f"/c/{campaign['id']}?{query}", headers=raw)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert "characters (U+" in response.json()["error"]["message"]
    assert _clicks_of(relay, campaign["id"]) == 0


async def test_a_click_keeps_letters_of_any_script_and_joiners_in_its_sub_ids(
    relay: Relay,
) -> None:
    campaign = await relay.campaign()
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # with a ZWNJ
    click_id = await relay.click(
        campaign["id"], sub1="café 日本", sub2=persian, fbclid="IwAR-é", external_id="日本-1"
    )
    click = relay.runtime.traffic.get_click(click_id)
    assert click is not None
    assert (click.sub1, click.sub2, click.fbclid) == ("café 日本", persian, "IwAR-é")
