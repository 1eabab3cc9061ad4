"""Replaying committed histories recorded from real runs (tests/record_histories.py)."""

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
    from relay.crypto import KeyRing
    from relay.payload_codec import ENCODING, relay_data_converter, worker_data_converter
    from relay.worker import WORKFLOWS
    from relay.workflow_io import ConversionInput, ConversionResult, PlanInput
    from tests.harness import RECORDING_KEYS
    from workflows.conversion import DedupClaimWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
# Replayed through the payload codec, which decrypts what was recorded with it
# (`encrypted_*` and later) and, as a reader, passes through the plain payloads recorded
# before it. The worker's converter runs no plain payload (after its cutoff): replaying a
# recorded history is not running a new input.
CONVERTER = relay_data_converter(KeyRing.parse(RECORDING_KEYS))


def _history(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(path.stem, data)


def test_histories_were_recorded() -> None:
    assert {p.stem for p in HISTORIES} >= {
        f"{shape}_{name}"
        for shape in ("conversion", "inbox", "firsttry", "states", "shaped", "regular")
        for name in ("clean", "retries", "funnel", "duplicate", "reversal")
    } | {f"encrypted_{name}" for name in ("clean", "funnel", "duplicate")}


def _encodings(node: object) -> list[bytes]:
    """The encoding of every payload in a history's JSON, whatever the nesting."""
    if isinstance(node, list):
        return [encoding for item in node for encoding in _encodings(item)]
    if not isinstance(node, dict):
        return []
    found = [base64.b64decode(node["metadata"].get("encoding", ""))] if "data" in node else []
    return found + [encoding for value in node.values() for encoding in _encodings(value)]


@pytest.mark.parametrize(
    "path", [p for p in HISTORIES if p.stem.startswith(("encrypted_", "shaped_", "regular_"))]
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


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_incompatible_change_fails_replay(path: Path) -> None:
    replayer = Replayer(
        workflows=[ReorderedConversionWorkflow, DedupClaimWorkflow],
        data_converter=CONVERTER,
    )
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(_history(path))
