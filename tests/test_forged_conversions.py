"""Forged conversions through Temporal (issue 18, finding 1): whoever reaches the Temporal
frontend can start Relay's workflows or schedule its activities. A worker runs only inputs
encrypted with the key ring (relay/temporal/payload_codec.py), and only conversions whose ID is the
one their click, event and txid make, on the run of that ID (activities/prepare.py)."""

import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.prepare import FORGED_TYPE, NOT_ITS_ID, NOT_ITS_RUN
from relay.core.ids import conversion_id
from relay.domain.models import Conversion
from relay.domain.workflow_io import CURRENT_SHAPE, ConversionInput
from relay.process.devserver import DevServer
from relay.store.rows import utc_now
from relay.temporal.payload_codec import NOT_ENCRYPTED_MESSAGE, NOT_ENCRYPTED_TYPE
from tests.embedded import free_port
from tests.harness import Relay, physical_rows

PAYOUT = Decimal("99999")


async def _target(relay: Relay) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """A network, a campaign with a Meta and a TikTok pixel, and a real click on it: what
    a forged conversion needs to be attributed and delivered."""
    network = await relay.network()
    campaign = await relay.campaign()
    pixels = [await relay.pixel(campaign["id"], p) for p in ("meta", "tiktok")]
    return network, pixels, await relay.click(campaign["id"])


def _forged(network: dict[str, Any], click_id: str, txid: str, **fields: Any) -> Conversion:
    return Conversion(
        conversion_id=conversion_id(click_id, "sale", txid),
        click_id=click_id,
        network_id=network["id"],
        event_type="sale",
        payout=PAYOUT,
        currency="USD",
        txid=txid,
        received_at=utc_now(),
        **fields,
    )


def _sent(relay: Relay, pixels: list[dict[str, Any]]) -> list[Any]:
    return [
        r
        for p in pixels
        for r in relay.platforms.requests_for(p["platform"], p["platform_pixel_id"])
    ]


def _causes(err: BaseException | None) -> list[BaseException]:
    found = []
    while err is not None:
        found.append(err)
        err = err.__cause__
    return found


async def _failure(handle: Any) -> list[BaseException]:
    """The chain of causes the run failed with (it must fail, not complete)."""
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    return _causes(failed.value.cause)


async def _plain_client(relay: Relay) -> Client:
    """A client as `temporal workflow start` is: the frontend's address, no codec."""
    address = relay.env.client.service_client.config.target_host
    return await Client.connect(address, namespace=relay.env.client.namespace)


async def _delivered(relay: Relay, network: dict[str, Any], click_id: str) -> None:
    """The same campaign's genuine postback is delivered: the worker runs and would send."""
    answer = await relay.postback(
        key=network["postback_key"], click_id=click_id, txid=uuid.uuid4().hex, payout="1"
    )
    result = await relay.result(answer.json()["conversion_id"])
    assert [f.delivered for f in result.fires] == [True, True]


async def test_a_start_in_clear_fails_and_sends_nothing(relay: Relay) -> None:
    network, pixels, click_id = await _target(relay)
    conversion = _forged(network, click_id, "T-" + uuid.uuid4().hex)
    forged = ConversionInput(conversion=conversion, shape=CURRENT_SHAPE).model_dump(mode="json")
    attacker = await _plain_client(relay)
    handle = await attacker.start_workflow(
        "ConversionWorkflow",
        forged,
        id=conversion.conversion_id,
        task_queue=relay.runtime.settings.task_queue,
        execution_timeout=timedelta(seconds=60),
    )
    [refusal] = await _failure(handle)
    assert isinstance(refusal, ApplicationError) and refusal.message == NOT_ENCRYPTED_MESSAGE
    assert refusal.type == NOT_ENCRYPTED_TYPE and refusal.non_retryable
    # Failed at once, on its first workflow task: no task failures retried on a loop.
    events = [e async for e in handle.fetch_history_events()]
    assert sum(e.HasField("workflow_task_failed_event_attributes") for e in events) == 0
    await _delivered(relay, network, click_id)
    assert len(_sent(relay, pixels)) == 2  # the genuine one's, to each pixel
    assert physical_rows(relay.runtime.clickhouse, conversion.conversion_id) == 0


@pytest.mark.parametrize(
    ("workflow_type", "input"),
    [
        ("RedeliveryWorkflow", {"conversion_id": "conv_x"}),
        ("BulkRedeliveryWorkflow", {"where": {}, "rate_per_s": 1000}),
    ],
)
async def test_redeliveries_in_clear_fail(
    relay: Relay, workflow_type: str, input: dict[str, Any]
) -> None:
    attacker = await _plain_client(relay)
    handle = await attacker.start_workflow(
        workflow_type,
        input,
        id=f"redeliver_forged_{uuid.uuid4().hex[:8]}",
        task_queue=relay.runtime.settings.task_queue,
        execution_timeout=timedelta(seconds=60),
    )
    [refusal] = await _failure(handle)
    assert isinstance(refusal, ApplicationError) and refusal.message == NOT_ENCRYPTED_MESSAGE


@workflow.defn(name="ForgedSend")
class ForgedSend:
    """An attacker's own workflow, on its own worker: it schedules Relay's send activity on
    Relay's task queue with an input in clear."""

    @workflow.run
    async def run(self, args: dict[str, Any]) -> None:
        await workflow.execute_activity(
            "send_pixel_event",
            args["input"],
            task_queue=args["queue"],
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_an_activity_input_in_clear_is_refused(relay: Relay) -> None:
    network, pixels, click_id = await _target(relay)
    conversion = _forged(network, click_id, "T-" + uuid.uuid4().hex)
    meta = pixels[0]
    send = {
        "conversion_id": conversion.conversion_id,
        "target": {
            "pixel_id": meta["id"],
            "platform": "meta",
            "pixel_name": meta["name"],
            "event_name": "Purchase",
        },
        "conversion": conversion.model_dump(mode="json"),
    }
    attacker = await _plain_client(relay)
    queue = f"attacker-{uuid.uuid4().hex[:8]}"
    async with Worker(
        attacker,
        task_queue=queue,
        workflows=[ForgedSend],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await attacker.start_workflow(
            ForgedSend.run,
            {"input": send, "queue": relay.runtime.settings.task_queue},
            id=f"forged-send-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        causes = await _failure(handle)
    assert NOT_ENCRYPTED_MESSAGE in [c.message for c in causes if isinstance(c, ApplicationError)]
    assert _sent(relay, pixels) == []


@pytest.mark.parametrize("mismatch", ["conversion_id", "workflow_id"])
async def test_a_start_with_the_key_still_needs_the_conversions_own_id(
    relay: Relay, mismatch: str
) -> None:
    """Someone with the key ring can encrypt anything; the conversion ID must still be the
    one its click, event and txid make, and the run's ID."""
    network, pixels, click_id = await _target(relay)
    conversion = _forged(network, click_id, "T-" + uuid.uuid4().hex)
    workflow_id = conversion.conversion_id
    if mismatch == "conversion_id":
        conversion.conversion_id = "conv_FORGED" + uuid.uuid4().hex[:13]
        workflow_id = conversion.conversion_id
    else:
        workflow_id = conversion_id(click_id, "sale", "another-txid")
    handle = await relay.runtime.temporal.start_workflow(
        "ConversionWorkflow",
        ConversionInput(conversion=conversion, shape=CURRENT_SHAPE),
        id=workflow_id,
        task_queue=relay.runtime.settings.task_queue,
        execution_timeout=timedelta(seconds=60),
    )
    causes = await _failure(handle)
    refusal = causes[-1]
    assert isinstance(refusal, ApplicationError) and refusal.non_retryable
    assert refusal.message == (NOT_ITS_ID if mismatch == "conversion_id" else NOT_ITS_RUN)
    assert refusal.type == FORGED_TYPE
    assert _sent(relay, pixels) == []
    for recorded in {conversion.conversion_id, workflow_id}:
        assert physical_rows(relay.runtime.clickhouse, recorded) == 0
    await _delivered(relay, network, click_id)


# Starts a dev server of its own; `dev_env` keeps it out of `pytest -m unit` (conftest).
@pytest.mark.usefixtures("dev_env")
async def test_the_dev_servers_http_api_answers_loopback_names_only(tmp_path: Path) -> None:
    """`relay up`'s dev server: its HTTP API refuses a Host a rebound name would send."""
    http_port = free_port()
    server = DevServer(tmp_path, free_port(), free_port(), http_port=http_port)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
            for host, status in [
                (f"127.0.0.1:{http_port}", 200),
                (f"localhost:{http_port}", 200),
                (f"rebound.example:{http_port}", 403),
                (f"127.0.0.1.rebound.example:{http_port}", 403),
            ]:
                answer = await http.get("/api/v1/namespaces", headers={"Host": host})
                assert answer.status_code == status, (host, answer.text)
    finally:
        server.stop()
