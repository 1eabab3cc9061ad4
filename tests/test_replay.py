"""Replaying committed histories recorded from real runs (tests/record_histories.py), of
every workflow type; bumping the current shape keeps each replaying."""

import base64
import json
from datetime import timedelta
from pathlib import Path

from temporalio import workflow

# This module defines a workflow, so the sandbox re-imports it: pass the rest through.
with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    from activities.conversions import ConversionActivities
    from relay.core.crypto import KeyRing
    from relay.domain import workflow_io
    from relay.domain.redelivery import (
        BulkInput,
        BulkProgress,
        RedeliveryInput,
        RedeliveryResult,
    )
    from relay.domain.workflow_io import (
        CURRENT_SHAPE,
        ClaimInput,
        ConversionInput,
        ConversionResult,
        PlanInput,
    )
    from relay.process.worker import WORKFLOWS
    from relay.temporal.payload_codec import ENCODING, relay_data_converter, worker_data_converter
    from tests.harness import RECORDING_KEYS
    from tests.record_histories import SHAPE as TODAYS_PREFIX
    from tests.support import workflow_type
    from workflows.redelivery import BulkRedeliveryWorkflow, RedeliveryWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
# Replayed through the payload codec, which decrypts what was recorded with it
# (`encrypted_*` and later) and, as a reader, passes through the plain payloads recorded
# before it. The worker's converter runs no plain payload (after its cutoff): replaying a
# recorded history is not running a new input.
CONVERTER = relay_data_converter(KeyRing.parse(RECORDING_KEYS))


def _history(path: Path) -> WorkflowHistory:
    """The recorded run, under its workflow ID where the file keeps it (a bulk redelivery
    names its children after it); the older files' runs never read their ID."""
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(data.pop("workflowId", path.stem), data)


def test_histories_were_recorded() -> None:
    assert {p.stem for p in HISTORIES} >= {
        f"{shape}_{name}"
        for shape in ("conversion", "inbox", "firsttry", "states", "shaped", "regular")
        for name in ("clean", "retries", "funnel", "duplicate", "reversal")
    } | {f"encrypted_{name}" for name in ("clean", "funnel", "duplicate")} | {
        "redelivery_fire_and_postback",
        "bulk_continued",
        "bulk_last_page",
        "claim_txid",
        "claim_click",
    }
    # Every workflow the worker runs has recorded runs, and a bulk run that continued as new.
    assert {workflow_type(p) for p in HISTORIES} == {w.__name__ for w in WORKFLOWS}
    continued = json.loads((HISTORIES[0].parent / "bulk_continued.json").read_text())
    assert continued["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"


def _encodings(node: object) -> list[bytes]:
    """The encoding of every payload in a history's JSON, whatever the nesting."""
    if isinstance(node, list):
        return [encoding for item in node for encoding in _encodings(item)]
    if not isinstance(node, dict):
        return []
    found = [base64.b64decode(node["metadata"].get("encoding", ""))] if "data" in node else []
    return found + [encoding for value in node.values() for encoding in _encodings(value)]


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in HISTORIES
        if p.stem.startswith(
            ("encrypted_", "shaped_", "regular_", "redelivery_", "bulk_", "claim_")
        )
    ],
    ids=lambda p: p.stem,
)
def test_encrypted_histories_hold_ciphertext(path: Path) -> None:
    """Inputs and results are ciphertext; what stays plain is the SDK's own marker data
    (local activity timing, patch IDs) and search attributes, never Relay's values."""
    data = json.loads(path.read_text())
    checked = 0
    for event in data["events"]:
        attributes = next(v for k, v in event.items() if k.endswith("EventAttributes"))
        for key in ("input", "result", "memo"):
            if key in attributes:
                assert set(_encodings(attributes[key])) == {ENCODING}, (event["eventId"], key)
                checked += 1
        if "markerRecordedEventAttributes" in event and "result" in attributes["details"]:
            assert set(_encodings(attributes["details"]["result"])) == {ENCODING}
            checked += 1
    assert checked >= 3  # the run's input and result, a local activity's result at least


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=CONVERTER)
    await replayer.replay_workflow(_history(path))


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays_once_the_current_shape_is_bumped(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next change bumps CURRENT_SHAPE (new runs start with it): every recorded run
    keeps its branches. The replayer's sandbox imports the workflow modules afresh for each
    run, and they read CURRENT_SHAPE from relay.domain.workflow_io (passed through), so
    a branch that tested it would see the bumped value here."""
    monkeypatch.setattr(workflow_io, "CURRENT_SHAPE", CURRENT_SHAPE + 1)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=CONVERTER)
    await replayer.replay_workflow(_history(path))


async def _started_at(path: Path, shape: int) -> WorkflowHistory:
    """The recorded conversion run, as if it had started at `shape`; checks that it was
    recorded at the current shape."""
    history = _history(path)
    started = history.events[0].workflow_execution_started_event_attributes
    [recorded] = await CONVERTER.decode(started.input.payloads, [ConversionInput])
    assert recorded.shape == CURRENT_SHAPE, "record today's shape: tests/record_histories.py"
    del started.input.payloads[:]
    started.input.payloads.extend(
        await CONVERTER.encode([recorded.model_copy(update={"shape": shape})])
    )
    return history


@pytest.mark.parametrize("shape", [CURRENT_SHAPE, CURRENT_SHAPE + 1])
@pytest.mark.parametrize(
    "path", [p for p in HISTORIES if p.stem.startswith(f"{TODAYS_PREFIX}_")], ids=lambda p: p.stem
)
async def test_a_run_at_the_current_shape_takes_todays_branches(path: Path, shape: int) -> None:
    """Runs recorded at the current shape (record_histories.SHAPE) replay as started at
    it, and at the next shape (a bump before its behaviour lands): a run at the current
    shape or later issues today's commands, whatever floor each branch tests."""
    replayer = Replayer(workflows=WORKFLOWS, data_converter=CONVERTER)
    await replayer.replay_workflow(await _started_at(path, shape))


@pytest.mark.parametrize(("name", "runs"), [("conversion_clean", False), ("encrypted_clean", True)])
async def test_the_worker_runs_only_encrypted_inputs(name: str, runs: bool) -> None:
    """`conversion_*` holds plain payloads (recorded before the codec): the worker's
    converter refuses its input (the run would fail, which its history does not show);
    `encrypted_*` replays as it does for readers."""
    worker = worker_data_converter(KeyRing.parse(RECORDING_KEYS), plaintext_until=None)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=worker)
    history = _history(Path(__file__).parent / "histories" / f"{name}.json")
    if runs:
        await replayer.replay_workflow(history)
    else:
        with pytest.raises(workflow.NondeterminismError):
            await replayer.replay_workflow(history)


@workflow.defn(name="ConversionWorkflow")
class ReorderedConversionWorkflow:
    """An incompatible change: plans before persisting (skips the persist step)."""

    @workflow.run
    async def run(self, input: ConversionInput) -> ConversionResult:
        conversion = input.conversion
        await workflow.execute_activity_method(
            ConversionActivities.plan_delivery,
            PlanInput(
                conversion_id=conversion.conversion_id,
                campaign_id=conversion.campaign_id,
                event_type=conversion.event_type,
            ),
            start_to_close_timeout=timedelta(seconds=30),
        )
        return ConversionResult(conversion_id=conversion.conversion_id)


@workflow.defn(name="RedeliveryWorkflow")
class WaitingRedeliveryWorkflow:
    """An incompatible change: waits before it plans (a timer no recorded run started)."""

    @workflow.run
    async def run(self, input: RedeliveryInput) -> RedeliveryResult:
        await workflow.sleep(timedelta(seconds=1))
        return await RedeliveryWorkflow().run(input)


@workflow.defn(name="BulkRedeliveryWorkflow")
class WaitingBulkRedeliveryWorkflow:
    """An incompatible change: waits before it counts or pages."""

    @workflow.run
    async def run(self, input: BulkInput) -> BulkProgress:
        await workflow.sleep(timedelta(seconds=1))
        return await BulkRedeliveryWorkflow().run(input)


@workflow.defn(name="DedupClaimWorkflow")
class WaitingDedupClaimWorkflow:
    """An incompatible change: holds the claim for a while before it ends."""

    @workflow.run
    async def run(self, input: ClaimInput) -> str:
        await workflow.sleep(timedelta(seconds=1))
        return input.conversion_id


# A changed version of each workflow type, by the type's name.
INCOMPATIBLE: dict[str, type] = {
    "ConversionWorkflow": ReorderedConversionWorkflow,
    "RedeliveryWorkflow": WaitingRedeliveryWorkflow,
    "BulkRedeliveryWorkflow": WaitingBulkRedeliveryWorkflow,
    "DedupClaimWorkflow": WaitingDedupClaimWorkflow,
}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_incompatible_change_fails_replay(path: Path) -> None:
    """Each history replayed on a changed version of its own workflow type."""
    assert workflow_type(path) in INCOMPATIBLE
    replayer = Replayer(workflows=list(INCOMPATIBLE.values()), data_converter=CONVERTER)
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(_history(path))
