"""Admission control (issue 10, item 8): past `RELAY_POSTBACK_MAX_IN_FLIGHT` postbacks being
accepted at once, the next is refused at once with 503 and `Retry-After`, and nothing refused
or accepted is lost."""

import asyncio

from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.store.pool import ClickHouse
from tests.harness import running_relay
from tests.platform_server import PlatformServer

LIMIT = 3
SENT = 40


async def test_postbacks_past_the_in_flight_bound_get_503_and_none_is_lost(
    dev_env: WorkflowEnvironment,
    clickhouse: ClickHouse,
    platforms: PlatformServer,
    keys: KeyRing,
) -> None:
    async with running_relay(
        dev_env, clickhouse, platforms, keys, postback_max_in_flight=LIMIT
    ) as relay:
        key = (await relay.network())["postback_key"]
        campaign = await relay.campaign()
        clicks = [await relay.click(campaign["id"]) for _ in range(SENT)]

        answers = await asyncio.gather(
            *(relay.postback(key=key, click_id=click, payout="2.50") for click in clicks)
        )

        refused = [click for click, a in zip(clicks, answers, strict=True) if a.status_code == 503]
        assert refused, f"{SENT} concurrent postbacks never had more than {LIMIT} in flight"
        for answer in answers:
            if answer.status_code == 503:
                assert answer.headers["Retry-After"] == "1"
                error = answer.json()["error"]
                assert error["code"] == "unavailable"
                assert "RELAY_POSTBACK_MAX_IN_FLIGHT" in error["message"]
            else:
                assert answer.status_code == 200, answer.text
                assert answer.json()["status"] == "accepted"
        intake = relay.runtime.intake
        assert intake is not None
        assert intake.admission.in_flight == 0
        assert intake.admission.refused == len(refused)

        # Nothing refused was written: each resend is a first send, accepted as new.
        for click in refused:
            again = await relay.postback(key=key, click_id=click, payout="2.50")
            assert (again.status_code, again.json()["status"]) == (200, "accepted")

        # Every one of the SENT conversions reaches Temporal, once.
        ids = {a.json()["conversion_id"] for a in answers if a.status_code == 200}
        assert len(ids) == SENT - len(refused)
        for conversion_id in ids:
            await relay.forwarded(conversion_id)


async def test_a_postback_while_the_api_stops_gets_503_not_500(
    dev_env: WorkflowEnvironment,
    clickhouse: ClickHouse,
    platforms: PlatformServer,
    keys: KeyRing,
) -> None:
    async with running_relay(dev_env, clickhouse, platforms, keys) as relay:
        key = (await relay.network())["postback_key"]
        campaign = await relay.campaign()
        click = await relay.click(campaign["id"])
        intake = relay.runtime.intake
        assert intake is not None
        await intake.inbox.close()  # as the API's shutdown does, requests still arriving
        answer = await relay.postback(key=key, click_id=click, payout="1")
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "1"
        assert "stopping" in answer.json()["error"]["message"]
