"""Outbound postbacks go only to public addresses unless allowed (issue 10 item 3): refused
when a template is saved and on the resolved address at send time; answers are read only
up to what the log keeps."""

from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_address, ip_network
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from activities.attempts import RESPONSE_LOG_LIMIT
from relay.core.crypto import KeyRing
from relay.core.settings import Settings
from relay.destinations.addresses import literal_address, refusal, template_destination_problem
from relay.store.pool import ClickHouse
from tests.harness import Relay, running_relay
from tests.platform_server import PlatformServer
from tests.traffic_source import TrafficSource

NOT_PUBLIC = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "169.254.169.254",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "0.0.0.0",
    "::",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "::127.0.0.1",  # IPv4-compatible
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "192.0.2.1",
    "198.18.0.1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refusal(ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ip_address(address)) is None


def test_the_allowlist_opens_only_its_networks() -> None:
    allowed = [ip_network("127.0.0.1/32"), ip_network("10.20.0.0/16")]
    for address in ("127.0.0.1", "::ffff:127.0.0.1", "10.20.30.40"):
        assert refusal(ip_address(address), allowed) is None
    for address in ("127.0.0.2", "10.21.0.1", "::1", "169.254.169.254"):
        assert refusal(ip_address(address), allowed) is not None


@pytest.mark.parametrize(
    "host", ["0x7f000001", "2130706433", "0177.0.0.1", "127.1", "0x7f.1", "017700000001"]
)
def test_odd_ipv4_spellings_are_read_as_the_resolver_reads_them(host: str) -> None:
    assert literal_address(host) == ip_address("127.0.0.1")


def test_names_are_left_to_send_time() -> None:
    assert literal_address("tracker.example") is None
    assert literal_address("1.2.3.4.example") is None


def test_the_allowlist_setting_is_a_json_list_of_cidrs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_OUTBOUND_ALLOWED_NETWORKS", '["127.0.0.1/32", "fd00::/8"]')
    assert Settings().outbound_allowed_networks == [
        ip_network("127.0.0.1/32"),
        ip_network("fd00::/8"),
    ]
    monkeypatch.setenv("RELAY_OUTBOUND_ALLOWED_NETWORKS", '["not-a-network"]')
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.delenv("RELAY_OUTBOUND_ALLOWED_NETWORKS")
    assert Settings().outbound_allowed_networks == []


@pytest.fixture
def source() -> Iterator[TrafficSource]:
    with TrafficSource() as running:
        yield running


@pytest.fixture
async def public_only(
    dev_env: WorkflowEnvironment, clickhouse: ClickHouse, platforms: PlatformServer, keys: KeyRing
) -> AsyncIterator[Relay]:
    """A relay with the default setting: no network allowed beyond public addresses."""
    async with running_relay(
        dev_env, clickhouse, platforms, keys, outbound_allowed_networks=[]
    ) as relay:
        yield relay


REFUSED_ON_SAVE = [
    "http://127.0.0.1:8080/pb?c={click_id}",
    "http://[::1]/pb?c={click_id}",
    "http://0x7f000001/pb?c={click_id}",
    "http://2130706433/pb",
    "http://0177.0.0.1/pb",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/pb?c={click_id}",
    "http://192.168.1.10/pb",
    "http://100.64.1.1/pb",
    "http://[::ffff:127.0.0.1]/pb",
    "http://[::ffff:a9fe:a9fe]/pb",
    "http://[fe80::1%25eth0]/pb",
    "https://user:pw@127.0.0.1:8443/pb",
]


@pytest.mark.parametrize("template", REFUSED_ON_SAVE)
def test_templates_naming_a_non_public_address_have_a_problem(template: str) -> None:
    problem = template_destination_problem(template, [])
    assert problem is not None and "RELAY_OUTBOUND_ALLOWED_NETWORKS" in problem


async def test_saving_a_non_public_destination_is_refused(public_only: Relay) -> None:
    relay = public_only
    campaign = await relay.campaign()
    base = f"/api/campaigns/{campaign['id']}/postbacks"
    kept = await relay.post(base, {"url_template": "https://tracker.example/pb?c={click_id}"})
    for template in REFUSED_ON_SAVE:
        for answer in (
            await relay.http.post(base, json={"url_template": template}, headers=relay.admin),
            await relay.http.patch(
                f"{base}/{kept['id']}", json={"url_template": template}, headers=relay.admin
            ),
        ):
            assert answer.status_code == 422, (template, answer.text)
            error = answer.json()["error"]
            assert error["param"] == "url_template"
            assert "outbound postbacks go only to public addresses" in error["message"]
    listed = await relay.http.get(base, headers=relay.admin)
    assert [p["url_template"] for p in listed.json()] == [kept["url_template"]]


async def test_allowed_networks_may_be_saved(relay: Relay) -> None:
    campaign = await relay.campaign()
    base = f"/api/campaigns/{campaign['id']}/postbacks"
    await relay.post(base, {"url_template": "http://127.0.0.1:9/pb?c={click_id}"})
    refused = await relay.http.post(
        base, json={"url_template": "http://127.0.0.2:9/pb"}, headers=relay.admin
    )
    assert refused.status_code == 422


async def _postback_rows(relay: Relay, template: str) -> tuple[Any, list[dict[str, Any]]]:
    network = await relay.network()
    campaign = await relay.campaign()
    await relay.post(f"/api/campaigns/{campaign['id']}/postbacks", {"url_template": template})
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(key=network["postback_key"], click_id=click_id)
    conversion_id = answer.json()["conversion_id"]
    [outcome] = (await relay.result(conversion_id)).postbacks
    return outcome, (await relay.conversion(conversion_id))["postbacks"]


async def test_a_name_resolving_to_loopback_is_refused_when_sent(
    public_only: Relay, source: TrafficSource
) -> None:
    port = source.url.rsplit(":", 1)[1]
    outcome, rows = await _postback_rows(public_only, f"http://localhost:{port}/pb?c={{click_id}}")
    assert not outcome.delivered
    [row] = rows  # permanent: not retried
    assert (row["verdict"], row["http_status"], row["success"]) == ("permanent", None, False)
    assert row["error"].startswith(
        "destination refused: host localhost is 127.0.0.1, a loopback address"
    )
    assert row["url"].startswith(f"http://localhost:{port}/pb?c=")
    assert source.calls == []  # nothing reached the listener


async def test_an_allowed_loopback_source_is_reached(relay: Relay, source: TrafficSource) -> None:
    port = source.url.rsplit(":", 1)[1]
    outcome, [row] = await _postback_rows(relay, f"http://localhost:{port}/pb?c={{click_id}}")
    assert outcome.delivered and row["verdict"] == "delivered" and len(source.calls) == 1


async def test_a_huge_answer_is_read_only_up_to_the_log_cap(
    relay: Relay, source: TrafficSource
) -> None:
    size = 5 * 1024 * 1024
    source.script((200, {"Content-Type": "text/plain"}, b"x" * size))
    outcome, [row] = await _postback_rows(relay, source.url + "/pb?c={click_id}")
    assert outcome.delivered and row["http_status"] == 200
    assert row["response_truncated"] and row["response_body"] == "x" * RESPONSE_LOG_LIMIT
    # Relay hung up after the first chunks: most of the 5 MB was never sent.
    assert source.body_bytes_sent < size // 2
