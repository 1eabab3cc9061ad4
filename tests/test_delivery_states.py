"""Delivery states: each send's final state and the conversion's, in the API (the last
attempt marked final, the list filtered by state) and as search attributes in Temporal."""

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from relay.domain.delivery_states import DeliveryState, conversion_state, send_state
from relay.temporal import search_attributes
from tests.harness import BAD_TOKEN, Relay
from tests.platform_server import Scripted


async def _conversion(relay: Relay, *pixels: tuple[str, tuple[Scripted, ...]]) -> dict[str, Any]:
    """One conversion on a new campaign with the given pixels and their scripted answers;
    waits until its workflow is done and returns it as the API shows it."""
    network = await relay.network()
    campaign = await relay.campaign()
    for platform, answers in pixels:
        pixel = await relay.pixel(campaign["id"], platform)
        relay.platforms.script(platform, pixel["platform_pixel_id"], *answers)
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(key=network["postback_key"], click_id=click_id)
    conversion_id = answer.json()["conversion_id"]
    await relay.result(conversion_id)
    return await relay.conversion(conversion_id)


async def _list(relay: Relay, **params: str) -> list[str]:
    response = await relay.http.get("/api/conversions", params=params, headers=relay.admin)
    assert response.status_code == 200, response.text
    return [c["conversion_id"] for c in response.json()["items"]]


async def _found(client: Client, query: str, expected: list[str]) -> None:
    """Visibility is eventually consistent: poll until the query returns `expected`."""
    seen: list[str] = []
    for _ in range(100):
        seen = sorted([w.id async for w in client.list_workflows(query)])
        if seen == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query!r} found {seen}, expected {expected}")


async def test_a_fire_failed_for_good_is_found_by_state_and_click_id(relay: Relay) -> None:
    failed = await _conversion(relay, ("meta", (BAD_TOKEN,)))
    delivered = await _conversion(relay, ("meta", ()))
    client = relay.runtime.temporal
    conv_id, click_id = failed["conversion_id"], failed["click_id"]
    await _found(client, f'DeliveryState = "failed" AND ClickId = "{click_id}"', [conv_id])
    await _found(client, f'ClickId = "{click_id}"', [conv_id])
    await _found(
        client,
        f'CampaignId = "{failed["campaign_id"]}" AND NetworkId = "{failed["network_id"]}" '
        f'AND EventType = "{failed["event_type"]}"',
        [conv_id],
    )
    other = delivered["conversion_id"]
    await _found(
        client, f'DeliveryState = "delivered" AND ClickId = "{delivered["click_id"]}"', [other]
    )
    await _found(client, f'DeliveryState = "failed" AND ClickId = "{delivered["click_id"]}"', [])


async def test_each_send_has_a_final_state_and_the_list_filters_by_it(relay: Relay) -> None:
    partial = await _conversion(relay, ("meta", (BAD_TOKEN,)), ("tiktok", ()))
    assert partial["delivery_state"] == "partial"
    states = {s["state"] for s in partial["sends"]}
    assert states == {"failed", "delivered"}
    [failed_send] = [s for s in partial["sends"] if s["state"] == "failed"]
    assert failed_send["kind"] == "pixel" and "190" in failed_send["reason"]
    assert [f["final"] for f in partial["fires"]] == [True, True]

    campaign = partial["campaign_id"]
    assert await _list(relay, campaign_id=campaign, delivery_state="partial") == [
        partial["conversion_id"]
    ]
    assert await _list(relay, campaign_id=campaign, delivery_state="delivered") == []
    response = await relay.http.get(
        "/api/conversions", params={"campaign_id": campaign}, headers=relay.admin
    )
    [item] = response.json()["items"]
    assert item["delivery_state"] == "partial"


async def test_an_unknown_delivery_state_is_refused(relay: Relay) -> None:
    response = await relay.http.get(
        "/api/conversions", params={"delivery_state": "lost"}, headers=relay.admin
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "delivery_state"


async def _new_namespace(client: Client) -> str:
    namespace = f"relay-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86_400)
        )
    )
    return namespace


async def test_migrate_registers_the_search_attributes_once(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    namespace = await _new_namespace(client)
    names = [k.name for k in search_attributes.KEYS]
    assert await search_attributes.missing(client, namespace) == names
    assert not await search_attributes.available(client, namespace)
    assert await search_attributes.register(client, namespace) == names
    assert await search_attributes.register(client, namespace) == []
    assert await search_attributes.available(client, namespace)


async def test_relay_migrate_registers_them_on_the_cluster(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = dev_env.client
    namespace = await _new_namespace(client)
    env = {
        **os.environ,
        "RELAY_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "RELAY_TEMPORAL_NAMESPACE": namespace,
        "RELAY_CLICKHOUSE_URL": f"chdb://{tmp_path}",
    }
    command = [sys.executable, "-m", "relay", "migrate"]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"search attributes in namespace {namespace}: added ClickId" in done.stdout
    assert await search_attributes.missing(client, namespace) == []


@pytest.mark.parametrize(
    ("sends", "expected"),
    [
        (["delivered", "delivered"], "delivered"),
        (["delivered", "failed"], "partial"),
        (["delivered", "not sendable"], "partial"),
        (["failed", "not sendable"], "failed"),
        (["not sendable"], "not sendable"),
        ([], "not sendable"),
    ],
)
def test_a_conversion_state_follows_from_its_sends(sends: list[str], expected: str) -> None:
    assert conversion_state(DeliveryState(s) for s in sends) == expected


def test_only_an_event_too_old_to_send_is_not_sendable() -> None:
    assert send_state(False, "meta_permanent: not sendable: older than 7 days") == "not sendable"
    assert send_state(False, "meta_permanent: request not sendable: UnicodeEncodeError") == "failed"
    assert send_state(False, "activity StartToClose timeout") == "failed"
    assert send_state(True, "") == "delivered"
