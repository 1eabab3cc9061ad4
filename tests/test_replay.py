"""Replaying committed histories recorded from real runs (tests/record_histories.py)."""

import json
from datetime import timedelta
from pathlib import Path

from temporalio import workflow

# This module defines a workflow, so the sandbox re-imports it: pass the rest through.
with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from activities.conversions import ConversionActivities
    from relay.worker import WORKFLOWS
    from relay.workflow_io import ConversionInput, ConversionResult, PlanInput
    from workflows.conversion import DedupClaimWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _history(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(path.stem, data)


def test_histories_were_recorded() -> None:
    assert {p.stem for p in HISTORIES} >= {
        f"{shape}_{name}"
        for shape in ("conversion", "inbox", "firsttry", "states")
        for name in ("clean", "retries", "funnel", "duplicate", "reversal")
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(_history(path))


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
        data_converter=pydantic_data_converter,
    )
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(_history(path))
