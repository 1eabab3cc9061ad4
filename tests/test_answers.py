"""Every JSON answer ends with a newline, as a terminal expects after `curl` (issue 22 #8):
a route's, an error's, and the postback fast path's."""

import json

from tests.harness import Relay


async def test_json_answers_end_with_a_newline(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    click_id = await relay.click(campaign["id"])
    answers = [
        await relay.http.get("/api/campaigns", headers=relay.admin),  # a route
        await relay.http.get("/api/campaigns/cmp_none", headers=relay.admin),  # a 404
        await relay.http.get("/api/campaigns"),  # the admin gate's 401
        await relay.postback(key=network["postback_key"], click_id=click_id),  # fast path
        await relay.postback(key="wrong-key", click_id=click_id),  # its refusal
    ]
    assert [a.status_code for a in answers] == [200, 404, 401, 200, 401]
    for answer in answers:
        assert answer.headers["content-type"] == "application/json"
        assert answer.content.endswith(b"\n") and not answer.content.endswith(b"\n\n")
        assert int(answer.headers["content-length"]) == len(answer.content)
        json.loads(answer.content)  # still one JSON document
