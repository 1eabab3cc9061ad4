"""Each error classification row of platforms.md 1.6 and 2.5, end to end on the time-skipping
server: what the platform answers, how many attempts follow, the backoff applied, the log."""

from typing import Any

import pytest

from tests.harness import Relay
from tests.platform_server import PlatformServer, Scripted

META = PlatformServer.meta_error
TIKTOK = PlatformServer.tiktok_error
POLICY_FIRST_BACKOFF_S = 2.0
THROTTLE_WAIT_S = 60.0  # throttled without a Retry-After (docs/postback-contract.md, retries)

# (platform, the platform's answer, retried?, backoff the next attempt must wait)
ROWS: list[tuple[str, Scripted, bool, float]] = [
    *[
        ("meta", Scripted(status=400, body=META(code)), True, THROTTLE_WAIT_S)
        for code in (4, 17, 341, 613, 80004)
    ],
    ("meta", Scripted(status=400, body=META(368)), True, POLICY_FIRST_BACKOFF_S),
    ("meta", Scripted(status=500, body=META(1)), True, POLICY_FIRST_BACKOFF_S),
    ("meta", Scripted(status=503, body=META(2)), True, POLICY_FIRST_BACKOFF_S),
    ("meta", Scripted(status=400, body=META(9999, is_transient=True)), True, 2.0),
    ("meta", Scripted(status=502, body="<html>Bad gateway</html>"), True, 2.0),
    ("meta", Scripted(status=408, body="Request Timeout"), True, 2.0),
    ("meta", Scripted(status=429, headers={"Retry-After": "7"}), True, 7.0),
    ("meta", Scripted(delay_s=3.0), True, 2.0),  # longer than Meta's 1.5 s timeout
    ("meta", Scripted(status=400, body=META(100, subcode=2804019)), False, 0),
    ("meta", Scripted(status=400, body=META(190)), False, 0),
    ("meta", Scripted(status=403, body=META(200)), False, 0),
    ("tiktok", Scripted(body=TIKTOK(40100)), True, THROTTLE_WAIT_S),
    ("tiktok", Scripted(body=TIKTOK(40700)), True, 2.0),
    ("tiktok", Scripted(body=TIKTOK(50002)), True, 2.0),
    ("tiktok", Scripted(status=503), True, 2.0),
    ("tiktok", Scripted(status=429, headers={"Retry-After": "11"}), True, 11.0),
    ("tiktok", Scripted(delay_s=4.0), True, 2.0),  # longer than TikTok's 3 s timeout
    ("tiktok", Scripted(body=TIKTOK(40001)), False, 0),
    ("tiktok", Scripted(body=TIKTOK(40002)), False, 0),
    ("tiktok", Scripted(body=TIKTOK(40105)), False, 0),
]


def _row_id(row: tuple[str, Scripted, bool, float]) -> str:
    platform, answer, _, _ = row
    code = answer.body.get("code") if isinstance(answer.body, dict) else None
    if isinstance(answer.body, dict) and "error" in answer.body:
        code = answer.body["error"]["code"]
    detail = f"code{code}" if code else f"http{answer.status}"
    return f"{platform}-{detail}" + ("-slow" if answer.delay_s else "")


@pytest.mark.parametrize("row", ROWS, ids=[_row_id(r) for r in ROWS])
async def test_error_row(skipping_relay: Relay, row: tuple[str, Scripted, bool, float]) -> None:
    platform, answer, retried, backoff_s = row
    relay = skipping_relay
    network = await relay.network()
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], platform)
    relay.platforms.script(platform, pixel["platform_pixel_id"], answer)
    click_id = await relay.click(campaign["id"])
    conv_id = (await relay.postback(key=network["postback_key"], click_id=click_id)).json()[
        "conversion_id"
    ]
    [fire] = (await relay.result(conv_id)).fires
    logged: list[dict[str, Any]] = (await relay.conversion(conv_id))["fires"]
    first = logged[0]
    assert first["verdict"] == ("retryable" if retried else "permanent")
    assert not first["success"] and first["error"]
    if answer.delay_s:
        assert first["http_status"] is None and "timeout" in first["error"].lower()
    else:
        assert first["http_status"] == answer.status
    if not retried:
        assert len(logged) == 1 and not fire.delivered
        return
    assert fire.delivered
    assert [f["verdict"] for f in logged] == ["retryable", "delivered"]
    waited = await _wait_before_last_attempt(relay, conv_id, first["duration_ms"])
    assert backoff_s <= waited < backoff_s + 5


async def _wait_before_last_attempt(relay: Relay, conversion_id: str, first_ms: int) -> float:
    """The backoff applied before the retry, in the server's (skipped) time: the send is one
    regular activity, scheduled before its first attempt; its last attempt started after
    the first attempt's run (`first_ms`, as logged) and the backoff."""
    history = await relay.runtime.temporal.get_workflow_handle(conversion_id).fetch_history()
    events = history.events
    [scheduled] = [e for e in events if e.HasField("activity_task_scheduled_event_attributes")]
    [started] = [e for e in events if e.HasField("activity_task_started_event_attributes")]
    assert started.activity_task_started_event_attributes.attempt == 2
    between = started.event_time.ToDatetime() - scheduled.event_time.ToDatetime()
    return between.total_seconds() - first_ms / 1000
