"""RELAY_LOG_FORMAT=json: one JSON object per line, with the conversion and click IDs bound
to the lines a conversion's workflow and activities log, and no other record attribute."""

import hashlib
import io
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from relay.core.logs import BindIds, JsonFormatter, json_handler
from relay.process.worker import workflow_runner
from tests.harness import Relay
from tests.platform_server import Scripted


@contextmanager
def json_lines() -> Iterator[list[dict[str, Any]]]:
    """What the root logger writes in JSON while the block runs (parsed once it ends)."""
    stream = io.StringIO()
    handler = json_handler(stream)
    root, client = logging.getLogger(), logging.getLogger("httpx")
    level, client_level = root.level, client.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    client.setLevel(logging.WARNING)  # as configure_logging sets it
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        client.setLevel(client_level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def test_configured_json_lines() -> None:
    """`configure_logging("json")`, as `relay` runs it with RELAY_LOG_FORMAT=json."""
    script = (
        "import logging; from relay.core.logs import configure_logging; configure_logging('json'); "
        "logging.getLogger('relay').warning('one %s', 'line'); "
        "logging.getLogger('httpx').info('GET /postback?email=ann@example.com')"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(x) for x in done.stderr.splitlines()]
    assert (line["logger"], line["level"], line["message"]) == ("relay", "WARNING", "one line")


def test_only_known_fields_reach_the_line() -> None:
    record = logging.LogRecord("relay", logging.WARNING, __file__, 1, "sent %s", ("x",), None)
    record.email = "ann@example.com"  # an extra a library might attach
    record.conversion_id = "conv_abc"
    line = json.loads(JsonFormatter().format(record))
    assert line.keys() == {"time", "level", "logger", "message", "conversion_id"}
    assert line["message"] == "sent x" and line["conversion_id"] == "conv_abc"


async def test_activity_lines_carry_the_conversion(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta")
    tiktok = await relay.pixel(campaign["id"], "tiktok")
    relay.platforms.script("meta", meta["platform_pixel_id"], Scripted(status=400))
    relay.platforms.script("tiktok", tiktok["platform_pixel_id"], Scripted(status=503))
    click_id = await relay.click(campaign["id"])
    email = f"ann.{uuid.uuid4().hex[:6]}@example.com"
    with json_lines() as lines:
        answer = await relay.postback(key=network["postback_key"], click_id=click_id, email=email)
        conversion_id = answer.json()["conversion_id"]
        await relay.result(conversion_id)
    ours = [line for line in lines if line.get("conversion_id") == conversion_id]
    # The failed send's one line, with both IDs and the run's details, and no traceback:
    # the SDK's own "Completing activity as failed" (with one) is at DEBUG.
    prefix = f"{conversion_id} to meta {meta['name']!r}, attempt 1: permanent: meta error"
    failed = [x for x in ours if x["message"].startswith(prefix)]
    assert [x["level"] for x in failed] == ["WARNING"], ours
    assert failed[0]["click_id"] == click_id
    assert failed[0]["activity_type"] == "send_pixel_event"
    assert failed[0]["workflow_id"] == conversion_id
    # The retried TikTok send: one WARNING line for the failed attempt, one INFO line for
    # the delivered retry.
    tiktok_lines = [x for x in ours if x["message"].startswith(f"{conversion_id} to tiktok ")]
    assert [(x["level"], x["attempt"]) for x in tiktok_lines] == [("WARNING", 1), ("INFO", 2)]
    assert ": retryable: HTTP 503" in tiktok_lines[0]["message"]
    assert not [x for x in ours if "Traceback" in x["message"] or "exception" in x], ours
    text = json.dumps(lines)
    email_hash = hashlib.sha256(email.encode()).hexdigest()
    for secret in (email, email_hash, network["postback_key"]):
        assert secret not in text


class Ids(BaseModel):
    conversion_id: str
    click_id: str


@workflow.defn
class LoggingWorkflow:
    @workflow.run
    async def run(self, ids: Ids) -> None:
        workflow.logger.warning("workflow-side line")


async def test_workflow_lines_carry_the_ids(dev_env: WorkflowEnvironment) -> None:
    ids = Ids(conversion_id=f"conv_{uuid.uuid4().hex}", click_id=f"clk_{uuid.uuid4().hex}")
    queue = f"logs-{uuid.uuid4().hex[:8]}"
    worker = Worker(
        dev_env.client,
        task_queue=queue,
        workflows=[LoggingWorkflow],
        interceptors=[BindIds()],
        workflow_runner=workflow_runner(False),  # as in production
    )
    with json_lines() as lines:
        async with worker:
            await dev_env.client.execute_workflow(
                LoggingWorkflow.run,
                ids,
                id=f"logs-{uuid.uuid4().hex}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )
    (line,) = [x for x in lines if x["message"].startswith("workflow-side line")]
    assert (line["conversion_id"], line["click_id"]) == (ids.conversion_id, ids.click_id)
    assert line["workflow_type"] == "LoggingWorkflow"
