"""`/readyz` answers 503 while a background part is stuck, naming it (and why, for the
admin token), and 200 once it recovers; `/metrics` has `relay_part_ready{part}` for every
part that reports. Without the admin token it tells no reasons and no numbers."""

import asyncio
import time
from typing import Any

from relay.core.supervision import PARTS
from tests.harness import Relay
from tests.support import Samples, samples

PART = "test-batch-writer"


async def _ready(relay: Relay, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    response = await relay.http.get("/readyz", headers=relay.admin if headers is None else headers)
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def _gauges(relay: Relay) -> Samples:
    response = await relay.http.get("/metrics", headers=relay.admin)
    assert response.status_code == 200, response.text
    found = samples(response.text)
    return {key: value for key, value in found.items() if key[0] == "relay_part_ready"}


def _gauge(part: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("relay_part_ready", (("part", part),))


async def test_a_stuck_part_makes_readyz_503_naming_it_until_it_recovers(relay: Relay) -> None:
    # The forwarder reports once it has read the inbox (at once); the inbox when it opens.
    deadline = time.monotonic() + 10
    while _gauge("forwarder") not in await _gauges(relay):
        assert time.monotonic() < deadline, "the forwarder never reported"
        await asyncio.sleep(0.05)
    status, body = await _ready(relay)
    assert (status, body["ready"], body["stuck"]) == (200, True, {})
    gauges = await _gauges(relay)
    assert gauges[_gauge("forwarder")] == 1 and gauges[_gauge("inbox")] == 1

    part = PARTS.part(PART)
    try:
        part.stuck("ClickHouse refused the batch (simulated); retrying")
        status, body = await _ready(relay)
        assert status == 503 and body["ready"] is False
        assert body["stuck"] == {PART: "ClickHouse refused the batch (simulated); retrying"}
        assert (body["temporal"], body["clickhouse"]) == ("ok", "ok")  # only the part
        assert body["inbox"]["depth"] == 0
        assert (await _gauges(relay))[_gauge(PART)] == 0

        part.ok()
        status, body = await _ready(relay)
        assert (status, body["ready"], body["stuck"]) == (200, True, {})
        assert (await _gauges(relay))[_gauge(PART)] == 1
    finally:
        part.forget()
    assert _gauge(PART) not in await _gauges(relay)


async def test_without_the_admin_token_readyz_names_what_is_stuck_but_not_why(
    relay: Relay,
) -> None:
    reason = "the inbox /secret/path/inbox.sqlite cannot be written (simulated); depth 17"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        status, body = await _ready(relay, headers)
        assert (status, body) == (
            200,
            {"ready": True, "temporal": "ok", "clickhouse": "ok", "stuck": {}},
        )
    part = PARTS.part(PART)
    try:
        part.stuck(reason)
        status, body = await _ready(relay, {})
        assert status == 503
        assert body == {
            "ready": False,
            "temporal": "ok",
            "clickhouse": "ok",
            "stuck": {PART: "stuck"},
        }
        status, body = await _ready(relay)  # the admin token: why, and the inbox's numbers
        assert (status, body["stuck"]) == (503, {PART: reason})
        assert set(body["inbox"]) == {"depth", "capacity", "oldest_age_s"}
    finally:
        part.forget()
