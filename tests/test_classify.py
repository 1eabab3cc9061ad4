"""Response classification for Meta and TikTok, one row per case of platforms.md 1.6/2.5."""

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.attempts import raise_for_verdict
from relay.destinations.classify import Classification, classify_transport_error, parse_retry_after
from relay.destinations.meta.answers import classify_meta
from relay.destinations.tiktok.answers import classify_tiktok
from relay.domain.models import Verdict

D, R, P = Verdict.DELIVERED, Verdict.RETRYABLE, Verdict.PERMANENT
# Throttled without a usable Retry-After, a send waits this long (docs/postback-contract.md).
THROTTLE_WAIT_S = 60.0


def meta_error(code: int, **extra: object) -> bytes:
    error: dict[str, object] = {"message": "msg", "type": "OAuthException", "code": code}
    return json.dumps({"error": error | extra}).encode()


def tiktok(code: int, message: str = "msg") -> bytes:
    return json.dumps({"code": code, "message": message, "request_id": "r1", "data": {}}).encode()


META_CASES = [
    # status, body, verdict
    (200, b'{"events_received": 1, "messages": [], "fbtrace_id": "A"}', D),
    (200, b'{"events_received": 0, "messages": [], "fbtrace_id": "A"}', R),
    (200, b'{"messages": []}', R),
    (200, b"<html>oops</html>", R),
    (200, meta_error(2), R),  # "API can return a success 200 when service unavailable"
    (200, meta_error(190), P),
    *[(400, meta_error(code), R) for code in (1, 2, 4, 17, 341, 368, 613, 80004)],
    *[(400, meta_error(code), P) for code in (100, 190, 102, 3, 10, 200, 294, 299)],
    (400, meta_error(100, error_subcode=2804003, is_transient=False), P),
    (400, meta_error(100, is_transient=True), R),
    (500, meta_error(99999, is_transient=False), P),
    (400, meta_error(99999), P),  # unknown code: the 4xx status decides
    (503, meta_error(99999), R),  # unknown code: the 5xx status decides
    (500, b"", R),
    (502, b"Bad Gateway", R),
    (503, b"", R),
    (408, b"", R),
    (429, b"", R),
    (400, b"", P),
    (401, b"not json", P),
    (404, b"", P),
    (301, b"", P),
]


@pytest.mark.parametrize(("status", "body", "verdict"), META_CASES)
def test_classify_meta(status: int, body: bytes, verdict: Verdict) -> None:
    assert classify_meta(status, body, {}).verdict is verdict


def test_meta_reason_names_code_type_and_message() -> None:
    body = json.dumps(
        {
            "error": {
                "message": "Invalid OAuth access token",
                "type": "OAuthException",
                "code": 190,
                "error_subcode": 460,
                "fbtrace_id": "x",
            }
        }
    ).encode()
    result = classify_meta(400, body, {})
    assert result.reason == "meta error 190/460 (OAuthException): Invalid OAuth access token"
    assert result.retry_after_s is None
    assert classify_meta(503, b"", {}).reason == "HTTP 503 with an unreadable body"
    assert classify_meta(200, b'{"events_received": 1}', {}).reason == "meta events_received 1"


def test_reason_is_bounded() -> None:
    body = json.dumps({"error": {"code": 100, "message": "x" * 5000}}).encode()
    assert len(classify_meta(400, body, {}).reason) <= 300


TIKTOK_CASES = [
    (200, tiktok(0, "OK"), D),
    (200, tiktok(20001), D),
    (200, tiktok(40100), R),
    (200, tiktok(40700), R),
    (200, tiktok(50000), R),
    (200, tiktok(50002), R),
    (200, tiktok(40001), P),
    (200, tiktok(40002), P),
    (200, tiktok(40105), P),
    (200, b"", R),
    (200, b"<html></html>", R),
    (200, b'{"message": "no code"}', R),
    (500, tiktok(0), R),
    (503, b"", R),
    (502, tiktok(40002), R),  # HTTP 5xx retries whatever the body says
    (408, b"", R),
    (429, tiktok(40100), R),
    (400, b"", P),
    (401, tiktok(40105), P),
    (400, tiktok(0), P),  # a success code without a 2xx is not a delivery
]


@pytest.mark.parametrize(("status", "body", "verdict"), TIKTOK_CASES)
def test_classify_tiktok(status: int, body: bytes, verdict: Verdict) -> None:
    assert classify_tiktok(status, body, {}).verdict is verdict


def test_tiktok_reasons() -> None:
    assert classify_tiktok(200, tiktok(40002, "bad param"), {}).reason == (
        "HTTP 200, tiktok code 40002: bad param"
    )
    assert "UNCONFIRMED" in classify_tiktok(200, tiktok(20001), {}).reason
    assert classify_tiktok(503, b"", {}).reason == "HTTP 503"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After": "-3"}, 0.0),
        # Throttled without a usable Retry-After: wait the throttle delay, not the 2 s backoff.
        ({"Retry-After": "soon"}, THROTTLE_WAIT_S),
        ({}, THROTTLE_WAIT_S),
    ],
)
def test_retry_after_on_retryable(headers: dict[str, str], expected: float | None) -> None:
    assert classify_meta(429, b"", headers).retry_after_s == expected
    assert classify_tiktok(429, b"", headers).retry_after_s == expected
    assert classify_tiktok(200, tiktok(40100), headers).retry_after_s == expected


def test_throttling_codes_wait_and_other_retryables_do_not() -> None:
    for code in (4, 17, 341, 613, 80004):
        assert classify_meta(400, meta_error(code), {}).retry_after_s == THROTTLE_WAIT_S
    assert classify_meta(500, meta_error(1), {}).retry_after_s is None
    assert classify_tiktok(200, tiktok(40700), {}).retry_after_s is None
    assert classify_tiktok(503, b"", {}).retry_after_s is None


def test_retry_after_ignored_when_not_retrying() -> None:
    headers = {"Retry-After": "60"}
    assert classify_meta(400, meta_error(190), headers).retry_after_s is None
    assert classify_tiktok(200, tiktok(0), headers).retry_after_s is None
    assert classify_meta(503, b"", httpx.Headers(headers)).retry_after_s == 60.0


def test_retry_after_http_date() -> None:
    now = datetime(2025, 11, 29, 8, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sat, 29 Nov 2025 08:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Sat, 29 Nov 2025 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("nan") is None


def test_absurd_retry_after_is_absent_and_long_ones_are_capped() -> None:
    for absurd in ("1e12", "1e15", "inf", "604801"):
        assert parse_retry_after(absurd) is None
    assert parse_retry_after("7200") == 7200.0
    throttled = Classification(Verdict.RETRYABLE, "HTTP 503", 7200.0)
    with pytest.raises(ApplicationError) as raised:
        raise_for_verdict(throttled, "HTTP 503", "meta")
    assert raised.value.next_retry_delay == timedelta(hours=1)  # RELAY_RETRY_DELAY_CAP_S
    with pytest.raises(ApplicationError) as raised:
        raise_for_verdict(throttled, "HTTP 503", "meta", cap_s=60)
    assert raised.value.next_retry_delay == timedelta(seconds=60)


REQUEST = httpx.Request("POST", "https://business-api.tiktok.com/open_api/v1.3/event/track/")


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (httpx.ConnectTimeout("t", request=REQUEST), R),
        (httpx.ReadTimeout("t", request=REQUEST), R),
        (httpx.PoolTimeout("t", request=REQUEST), R),
        (httpx.ConnectError("refused", request=REQUEST), R),
        (httpx.ReadError("reset", request=REQUEST), R),
        (httpx.RemoteProtocolError("eof", request=REQUEST), R),
        (OSError("network unreachable"), R),
        (httpx.UnsupportedProtocol("ftp", request=REQUEST), P),
        (httpx.LocalProtocolError("Illegal header value b'tok\\n'", request=REQUEST), P),
    ],
)
def test_classify_transport_error(exc: Exception, verdict: Verdict) -> None:
    result = classify_transport_error(exc)
    assert result.verdict is verdict
    assert result.reason.endswith(type(exc).__name__)  # never the message: it may quote a token
