"""Tests of the fake Meta / TikTok endpoints themselves, over real HTTP with httpx.

Bodies are written out by hand so these tests check the server against the platforms'
documented contracts, independently of Relay's own payload builders.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.platform_server import PlatformServer, Scripted

PIXEL = "123456789012345"
OTHER_PIXEL = "999"
TOKEN = "EAAB-test-token"
META_PATH = f"/v24.0/{PIXEL}/events"
TIKTOK_EVENT_PATH = "/open_api/v1.3/event/track/"
TIKTOK_PIXEL_PATH = "/open_api/v1.3/pixel/track/"
TIKTOK_PIXEL = "CABCDEF1234567890"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def meta_event(**overrides: Any) -> dict[str, Any]:
    """A valid website Purchase event, as Meta documents it."""
    now = int(time.time())
    event: dict[str, Any] = {
        "event_name": "Purchase",
        "event_time": now - 60,
        "event_id": "conv-1",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/landing?utm_source=fb",
        "user_data": {
            "em": [sha256("john_smith@gmail.com")],
            "ph": [sha256("16505551212")],
            "external_id": ["user-123"],
            "country": [sha256("us")],
            "client_ip_address": "203.0.113.9",
            "client_user_agent": USER_AGENT,
            "fbc": f"fb.1.{(now - 120) * 1000}.AbCdEf-_123",
            "fbp": "fb.1.1596403881668.1116446470",
        },
        "custom_data": {
            "value": 49.9,
            "currency": "USD",
            "content_type": "product",
            "order_id": "conv-1",
        },
    }
    event.update(overrides)
    return event


def tiktok_event(**overrides: Any) -> dict[str, Any]:
    """A valid Events API 2.0 web Purchase event."""
    event: dict[str, Any] = {
        "event": "Purchase",
        "event_time": int(time.time()) - 60,
        "event_id": "conv-1",
        "user": {
            "email": [sha256("alice_abc@gmail.com")],
            "phone": [sha256("+12133734253")],
            "external_id": [sha256("user_123")],
            "ip": "2001:db8::1",
            "user_agent": USER_AGENT,
            "ttclid": "E.C.P.abc123",
        },
        "page": {"url": "https://shop.example.com/landing"},
        "properties": {"value": 20.0, "currency": "USD", "content_type": "product"},
    }
    event.update(overrides)
    return event


def tiktok_body(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_source": "web",
        "event_source_id": TIKTOK_PIXEL,
        "data": list(events) or [tiktok_event()],
    }


def tiktok_pixel_body(**overrides: Any) -> dict[str, Any]:
    """A valid legacy ``/pixel/track/`` body."""
    body: dict[str, Any] = {
        "pixel_code": TIKTOK_PIXEL,
        "event": "CompletePayment",
        "event_id": "conv-1",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60)),
        "context": {
            "ad": {"callback": "E.C.P.abc123"},
            "page": {"url": "https://shop.example.com/landing"},
            "user": {"email": sha256("alice_abc@gmail.com"), "phone_number": sha256("+1213")},
            "user_agent": USER_AGENT,
            "ip": "203.0.113.9",
        },
        "properties": {"value": 20.0, "currency": "USD"},
    }
    body.update(overrides)
    return body


@pytest.fixture
def server() -> Iterator[PlatformServer]:
    with PlatformServer() as running:
        running.expect_token("meta", PIXEL, TOKEN)
        running.expect_token("meta", OTHER_PIXEL, TOKEN)
        running.expect_token("tiktok", TIKTOK_PIXEL, TOKEN)
        yield running


@pytest.fixture
def client(server: PlatformServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
        yield http


def post_meta(client: httpx.Client, *events: dict[str, Any]) -> httpx.Response:
    return client.post(META_PATH, json={"data": list(events), "access_token": TOKEN})


def post_tiktok(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return client.post(path, json=body, headers={"Access-Token": TOKEN})


def test_meta_accepts_a_valid_event_and_records_it(
    server: PlatformServer, client: httpx.Client
) -> None:
    response = post_meta(client, meta_event())

    assert response.status_code == 200
    answer = response.json()
    assert answer["events_received"] == 1
    assert answer["messages"] == []
    assert answer["fbtrace_id"]
    [recorded] = server.requests_for("meta", PIXEL)
    assert recorded.path == META_PATH
    assert recorded.problems == []
    assert recorded.body["data"][0]["event_name"] == "Purchase"
    assert recorded.headers["content-type"] == "application/json"


def test_meta_accepts_the_sdk_form_encoding_and_a_query_token(
    server: PlatformServer, client: httpx.Client
) -> None:
    # The official SDK posts form fields with ``data`` a JSON list of JSON-encoded events.
    events = json.dumps([json.dumps(meta_event()), json.dumps(meta_event(event_id="conv-2"))])
    response = client.post(
        META_PATH, params={"access_token": TOKEN}, data={"data": events, "test_event_code": "T1"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["events_received"] == 2
    [recorded] = server.requests_for("meta")
    assert recorded.query == {"access_token": TOKEN}
    assert recorded.body["data"][1]["event_id"] == "conv-2"


def test_meta_accepts_cookies_with_the_parameter_builder_appendix(client: httpx.Client) -> None:
    event = meta_event()
    event["user_data"]["fbc"] = "fb.1.1554763741205.AbCdEfGhIj.AQEAAQMB"
    event["user_data"]["fbp"] = "fb.1.1596403881668.1116446470.Ag"

    assert post_meta(client, event).status_code == 200


def _without_source_url(event: dict[str, Any]) -> None:
    del event["event_source_url"]


def _without_user_agent(event: dict[str, Any]) -> None:
    del event["user_data"]["client_user_agent"]


def _eight_days_old(event: dict[str, Any]) -> None:
    event["event_time"] = int(time.time()) - 8 * 24 * 3600


def _in_milliseconds(event: dict[str, Any]) -> None:
    event["event_time"] = int(time.time() * 1000)


def _in_the_future(event: dict[str, Any]) -> None:
    event["event_time"] = int(time.time()) + 3600


def _unhashed_email(event: dict[str, Any]) -> None:
    event["user_data"]["em"] = ["john_smith@gmail.com"]


def _unhashed_phone(event: dict[str, Any]) -> None:
    event["user_data"]["ph"] = "16505551212"


def _uppercase_hash(event: dict[str, Any]) -> None:
    event["user_data"]["em"] = [sha256("john_smith@gmail.com").upper()]


def _fbc_in_seconds(event: dict[str, Any]) -> None:
    event["user_data"]["fbc"] = f"fb.1.{int(time.time())}.AbCdEf"


def _hashed_ip(event: dict[str, Any]) -> None:
    event["user_data"]["client_ip_address"] = sha256("203.0.113.9")


def _empty_user_data(event: dict[str, Any]) -> None:
    event["user_data"] = {}


def _text_value(event: dict[str, Any]) -> None:
    event["custom_data"]["value"] = "49.90"


@pytest.mark.parametrize(
    ("break_event", "parameter", "subcode"),
    [
        (_without_source_url, "['event_source_url'] is required", 2804019),
        (_without_user_agent, "['user_data']['client_user_agent'] is required", 2804019),
        (_eight_days_old, "['event_time']: Event sent after seven days", 2804003),
        (_in_milliseconds, "['event_time']: looks like milliseconds", 2804001),
        (_in_the_future, "['event_time']: must not be in the future", 2804001),
        (_unhashed_email, "['user_data']['em'][0]: must be a lowercase hex SHA-256", 2804001),
        (_unhashed_phone, "['user_data']['ph']: must be a lowercase hex SHA-256", 2804001),
        (_uppercase_hash, "['user_data']['em'][0]", 2804001),
        (_fbc_in_seconds, "['user_data']['fbc']: must match", 2804001),
        (_hashed_ip, "['user_data']['client_ip_address']", 2804001),
        (_empty_user_data, "['user_data'] is required", 2804019),
        (_text_value, "['custom_data']['value']: must be a number", 2804001),
    ],
)
def test_meta_rejects_the_whole_batch_for_one_bad_event(
    server: PlatformServer,
    client: httpx.Client,
    break_event: Callable[[dict[str, Any]], None],
    parameter: str,
    subcode: int,
) -> None:
    bad = meta_event(event_id="conv-2")
    break_event(bad)

    response = post_meta(client, meta_event(), bad)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 100
    assert error["error_subcode"] == subcode
    assert error["is_transient"] is False
    assert error["type"] == "OAuthException"
    assert f"$['data'][1]{parameter}" in error["message"]
    assert error["error_user_msg"] == error["message"]
    [recorded] = server.requests_for("meta", PIXEL)
    assert recorded.status == 400
    assert len(recorded.problems) == 1


def test_meta_rejects_more_than_1000_events(client: httpx.Client) -> None:
    response = post_meta(client, *[meta_event(event_id=f"c{i}") for i in range(1001)])

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 100
    assert "$['data']" in error["message"]
    assert "1001 events" in error["message"]


def test_meta_rejects_a_missing_access_token(client: httpx.Client) -> None:
    response = client.post(META_PATH, json={"data": [meta_event()]})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 190
    assert error["type"] == "OAuthException"
    assert error["is_transient"] is False


@pytest.mark.parametrize(
    ("pixel", "token"),
    [
        (PIXEL, "wrong-token"),  # not the pixel's token
        (PIXEL, TOKEN.upper()),  # tokens are compared exactly
        ("555000", TOKEN),  # a pixel no token is bound to accepts none
    ],
)
def test_meta_answers_190_for_a_token_not_bound_to_the_pixel(
    server: PlatformServer, client: httpx.Client, pixel: str, token: str
) -> None:
    response = client.post(
        f"/v24.0/{pixel}/events", json={"data": [meta_event()], "access_token": token}
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"], error["is_transient"]) == (190, "OAuthException", False)
    assert error["message"].startswith("Invalid OAuth access token")
    [recorded] = server.requests_for("meta", pixel)
    assert recorded.status == 400


def test_a_rebound_token_replaces_the_old_one(server: PlatformServer, client: httpx.Client) -> None:
    server.expect_token("meta", PIXEL, "EAAB-rotated")

    assert post_meta(client, meta_event()).json()["error"]["code"] == 190
    rotated = client.post(META_PATH, json={"data": [meta_event()], "access_token": "EAAB-rotated"})
    assert rotated.status_code == 200


def test_tiktok_answers_40105_for_a_token_not_bound_to_the_pixel(
    server: PlatformServer, client: httpx.Client
) -> None:
    other = {**tiktok_body(), "event_source_id": "COTHER"}
    for path, body, token in [
        (TIKTOK_EVENT_PATH, tiktok_body(), "wrong-token"),
        (TIKTOK_PIXEL_PATH, tiktok_pixel_body(), "wrong-token"),
        (TIKTOK_EVENT_PATH, other, TOKEN),  # no token is bound to this pixel
    ]:
        response = client.post(path, json=body, headers={"Access-Token": token})

        assert response.status_code == 200
        assert response.json()["code"] == 40105
        assert response.json()["message"] == "Access token is incorrect or has been revoked."


def test_tiktok_event_track_accepts_a_valid_body(
    server: PlatformServer, client: httpx.Client
) -> None:
    response = post_tiktok(client, TIKTOK_EVENT_PATH, tiktok_body())

    assert response.status_code == 200
    answer = response.json()
    assert answer["code"] == 0
    assert answer["message"] == "OK"
    assert answer["request_id"]
    [recorded] = server.requests_for("tiktok", TIKTOK_PIXEL)
    assert recorded.problems == []
    assert recorded.headers["access-token"] == TOKEN


def test_tiktok_pixel_track_accepts_a_valid_legacy_body(
    server: PlatformServer, client: httpx.Client
) -> None:
    response = post_tiktok(client, TIKTOK_PIXEL_PATH, tiktok_pixel_body())

    assert response.status_code == 200
    assert response.json()["code"] == 0, response.text
    [recorded] = server.requests_for("tiktok", TIKTOK_PIXEL)
    assert recorded.path == TIKTOK_PIXEL_PATH


def test_tiktok_answers_40002_with_http_200_for_an_unhashed_email(client: httpx.Client) -> None:
    event = tiktok_event()
    event["user"]["email"] = "alice_abc@gmail.com"

    response = post_tiktok(client, TIKTOK_EVENT_PATH, tiktok_body(event))

    assert response.status_code == 200
    answer = response.json()
    assert answer["code"] == 40002
    assert "data[0].user.email" in answer["message"]


def test_tiktok_legacy_answers_40002_for_an_unhashed_phone(client: httpx.Client) -> None:
    body = tiktok_pixel_body()
    body["context"]["user"]["phone_number"] = "+12133734253"

    answer = post_tiktok(client, TIKTOK_PIXEL_PATH, body).json()

    assert answer["code"] == 40002
    assert "context.user.phone_number" in answer["message"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"event_time": int(time.time() * 1000)}, "data[0].event_time"),
        ({"event_id": None}, "data[0].event_id"),
        ({"page": {}}, "data[0].page"),
    ],
)
def test_tiktok_event_track_names_the_bad_field(
    client: httpx.Client, overrides: dict[str, Any], field: str
) -> None:
    answer = post_tiktok(client, TIKTOK_EVENT_PATH, tiktok_body(tiktok_event(**overrides))).json()

    assert answer["code"] == 40002
    assert answer["message"].startswith(field)


def test_tiktok_answers_40105_without_an_access_token(client: httpx.Client) -> None:
    for path, body in [
        (TIKTOK_EVENT_PATH, tiktok_body()),
        (TIKTOK_PIXEL_PATH, tiktok_pixel_body()),
    ]:
        response = client.post(path, json=body)

        assert response.status_code == 200
        assert response.json()["code"] == 40105


def test_unknown_path_is_404(server: PlatformServer, client: httpx.Client) -> None:
    assert client.post("/v24.0/123/other", json={}).status_code == 404
    assert client.get(META_PATH).status_code == 404
    assert [r.platform for r in server.requests_for()] == ["unknown", "unknown"]


def test_scripted_500_then_normal_success(server: PlatformServer, client: httpx.Client) -> None:
    server.script("meta", PIXEL, Scripted(status=500))

    first = post_meta(client, meta_event())
    second = post_meta(client, meta_event())

    assert first.status_code == 500
    assert first.json()["error"]["is_transient"] is True
    assert second.status_code == 200
    assert second.json()["events_received"] == 1
    assert [r.status for r in server.requests_for("meta", PIXEL)] == [500, 200]


def test_scripted_answer_is_per_pixel(server: PlatformServer, client: httpx.Client) -> None:
    server.script("meta", "other-pixel", Scripted(status=500))

    assert post_meta(client, meta_event()).status_code == 200


def test_scripted_retry_after_header_is_returned(
    server: PlatformServer, client: httpx.Client
) -> None:
    throttled = Scripted(status=429, headers={"Retry-After": "2"})
    server.script("tiktok", TIKTOK_PIXEL, throttled)

    response = post_tiktok(client, TIKTOK_EVENT_PATH, tiktok_body())

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["code"] == 40100


def test_scripted_body_overrides_validation_but_problems_are_recorded(
    server: PlatformServer, client: httpx.Client
) -> None:
    event = tiktok_event()
    event["user"]["email"] = "alice_abc@gmail.com"
    server.script("tiktok", TIKTOK_PIXEL, Scripted(body=PlatformServer.tiktok_error(40100)))

    answer = post_tiktok(client, TIKTOK_EVENT_PATH, tiktok_body(event)).json()

    assert answer["code"] == 40100
    [recorded] = server.requests_for("tiktok")
    assert recorded.response == answer
    assert recorded.problems and "data[0].user.email" in recorded.problems[0]


def test_scripted_delay_times_out_one_client_while_others_are_answered(
    server: PlatformServer,
) -> None:
    server.script("meta", PIXEL, Scripted(delay_s=3.0))
    outcome: list[BaseException | int] = []

    def slow_send() -> None:
        with httpx.Client(base_url=server.base_url, timeout=0.5) as impatient:
            try:
                outcome.append(post_meta(impatient, meta_event()).status_code)
            except httpx.TimeoutException as exc:
                outcome.append(exc)

    slow = threading.Thread(target=slow_send)
    slow.start()
    # Wait until the slow request is being held, so the next one is truly concurrent.
    deadline = time.monotonic() + 2
    while not server.requests_for("meta", PIXEL) and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    with httpx.Client(base_url=server.base_url, timeout=2.0) as prompt:
        fast = prompt.post(
            f"/v24.0/{OTHER_PIXEL}/events", json={"data": [meta_event()], "access_token": TOKEN}
        )
    elapsed = time.monotonic() - started
    slow.join()

    assert fast.status_code == 200
    assert elapsed < 0.5
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.ReadTimeout)


def test_requests_for_filters_and_clear_forgets(
    server: PlatformServer, client: httpx.Client
) -> None:
    post_meta(client, meta_event())
    post_tiktok(client, TIKTOK_EVENT_PATH, tiktok_body())
    server.script("meta", PIXEL, Scripted(status=500))

    assert len(server.requests_for()) == 2
    assert [r.platform for r in server.requests_for("tiktok")] == ["tiktok"]
    assert server.requests_for("meta", "nope") == []
    server.clear()
    assert server.requests_for() == []
    assert post_meta(client, meta_event()).status_code == 200


def test_error_helpers_build_platform_shaped_bodies() -> None:
    meta = PlatformServer.meta_error(2804, "Invalid parameter", subcode=2804003)["error"]
    assert meta["code"] == 2804
    assert meta["error_subcode"] == 2804003
    assert meta["is_transient"] is False
    assert set(meta) >= {"message", "type", "fbtrace_id"}
    assert PlatformServer.meta_error(4, is_transient=True)["error"]["is_transient"] is True

    tiktok = PlatformServer.tiktok_error(40100)
    assert tiktok["code"] == 40100
    assert set(tiktok) == {"code", "message", "request_id", "data"}


def test_base_url_needs_a_started_server() -> None:
    server = PlatformServer()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        assert server.base_url.startswith("http://127.0.0.1:")


def test_accepted_counts_distinct_events_a_pixel_took(client: httpx.Client) -> None:
    post_meta(client, meta_event(event_id="e-1"))
    post_meta(client, meta_event(event_id="e-1"))  # a resend: one event
    post_meta(client, meta_event(event_id="e-2"))
    client.post(META_PATH, json={"data": [meta_event(event_id="e-3")], "access_token": "wrong"})
    answer = client.get("/_stand-in/accepted", params={"platform": "meta", "pixel": PIXEL})
    summary = answer.json()
    assert (summary["requests"], summary["events"]) == (3, 2)
    assert summary["last_at"] > time.time() - 60
    none = client.get("/_stand-in/accepted", params={"platform": "tiktok", "pixel": "nope"})
    assert none.json() == {"requests": 0, "events": 0, "last_at": None}
