"""Issue 18 #3: wrong admin bearer tokens and wrong postback keys are limited per client
address (429 with Retry-After, in Relay's error shape), counted in `relay_auth_failures`;
a right token or key from a limited address still passes, and another address is not
limited (the address is the one `client_ip` finds, trusted proxies believed)."""

import ipaddress
import uuid

import pytest

from relay.core.metrics import REGISTRY
from tests.harness import Relay


def _counted(credential: str, status: int) -> float:
    labels = {"credential": credential, "status": str(status)}
    return REGISTRY.get_sample_value("relay_auth_failures_total", labels) or 0.0


async def test_wrong_bearer_tokens_are_limited_and_the_right_one_still_passes(
    relay: Relay,
) -> None:
    limit = relay.runtime.settings.auth_failure_limit
    before = (_counted("bearer", 401), _counted("bearer", 429))
    wrong = {"Authorization": "Bearer wrong"}
    statuses = [
        (await relay.http.get("/api/networks", headers=wrong)).status_code for _ in range(limit + 3)
    ]
    assert statuses == [401] * limit + [429] * 3
    limited = await relay.http.get("/api/networks", headers=wrong)
    assert limited.status_code == 429
    assert 0 < int(limited.headers["retry-after"]) <= 300
    error = limited.json()["error"]
    assert error["code"] == "too_many_failures" and error["param"] == "Authorization"
    assert "a valid admin bearer token is required" in error["message"]
    assert (_counted("bearer", 401), _counted("bearer", 429)) == (
        before[0] + limit,
        before[1] + 4,
    )
    # The right token is never limited; no token at all guesses nothing (401, uncounted).
    assert (await relay.http.get("/api/networks", headers=relay.admin)).status_code == 200
    assert (await relay.http.get("/api/networks")).status_code == 401


async def test_wrong_postback_keys_are_limited_and_a_networks_key_still_passes(
    relay: Relay,
) -> None:
    network = await relay.network()
    limit = relay.runtime.settings.auth_failure_limit
    statuses = [
        (await relay.postback(key=f"guess-{i}", click_id="c1")).status_code
        for i in range(limit + 2)
    ]
    assert statuses == [401] * limit + [429] * 2
    limited = await relay.postback(key="guess", click_id="c1")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    error = limited.json()["error"]
    assert error["code"] == "too_many_failures" and error["param"] == "key"
    assert "the postback key does not match any network" in error["message"]
    accepted = await relay.postback(key=network["postback_key"], click_id=f"c-{uuid.uuid4()}")
    assert accepted.status_code == 200, accepted.text
    # Postback keys have a budget of their own: the admin token's is untouched.
    wrong = {"Authorization": "Bearer wrong"}
    assert (await relay.http.get("/api/networks", headers=wrong)).status_code == 401


async def test_each_client_address_has_its_own_count_behind_a_trusted_proxy(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test client's address is the proxy; X-Forwarded-For names the clients."""
    proxy = [ipaddress.ip_network("203.0.113.9/32")]
    monkeypatch.setattr(relay.runtime.settings, "trusted_proxies", proxy)
    limit = relay.runtime.settings.auth_failure_limit

    async def status(client: str) -> int:
        headers = {"Authorization": "Bearer wrong", "X-Forwarded-For": client}
        return (await relay.http.get("/api/networks", headers=headers)).status_code

    for _ in range(limit):
        assert await status("198.51.100.1") == 401
    assert await status("198.51.100.1") == 429
    assert await status("198.51.100.2") == 401  # another client is not limited
