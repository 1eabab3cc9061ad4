"""A conversion's run carries a one-line summary in the Temporal UI ("current details", the
`__temporal_workflow_metadata` query the UI reads): each send with ✔ or ✘ and why."""

from temporalio.api.sdk.v1 import WorkflowMetadata

from relay.domain.models import Platform
from relay.domain.workflow_io import (
    ConversionResult,
    FireOutcome,
    PixelTarget,
    PostbackOutcome,
    PostbackTarget,
)
from tests.harness import Relay
from tests.platform_server import Scripted
from workflows.summary import run_summary


def _fire(platform: Platform, name: str, error: str = "") -> FireOutcome:
    target = PixelTarget(pixel_id="px_1", platform=platform, pixel_name=name, event_name="X")
    return FireOutcome(target=target, delivered=not error, error=error)


def test_each_send_and_why_it_failed() -> None:
    result = ConversionResult(
        conversion_id="conv_1",
        fires=[
            _fire(Platform.META, "Meta main"),
            _fire(Platform.TIKTOK, "TikTok main", "tiktok_permanent: HTTP 200, tiktok code 40105"),
        ],
        postbacks=[
            PostbackOutcome(
                target=PostbackTarget(postback_id="pb_1"), delivered=False, error="x" * 200
            )
        ],
    )
    summary = run_summary(result)
    assert summary.startswith("Meta 'Meta main' ✔ · TikTok 'TikTok main' ✘ HTTP 200, tiktok code")
    assert summary.endswith("postback pb_1 ✘ " + "x" * 79 + "…")


def test_a_conversion_not_sent_says_why() -> None:
    skipped = ConversionResult(conversion_id="conv_1", skipped="duplicate of conv_0")
    assert run_summary(skipped) == "not sent: duplicate of conv_0"
    nothing = ConversionResult(conversion_id="conv_1")
    assert run_summary(nothing).startswith("nothing to send")


async def test_the_temporal_ui_reads_the_summary_of_a_finished_run(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    await relay.pixel(campaign["id"], "meta", name="Meta main")
    tiktok = await relay.pixel(campaign["id"], "tiktok", name="TikTok main")
    relay.platforms.script("tiktok", tiktok["platform_pixel_id"], Scripted(status=400))
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(key=network["postback_key"], click_id=click_id)
    conversion_id = answer.json()["conversion_id"]
    await relay.result(conversion_id)
    handle = relay.runtime.temporal.get_workflow_handle(conversion_id)
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    details = metadata.current_details
    assert details.startswith("Meta 'Meta main' ✔ · TikTok 'TikTok main' ✘ "), details
    assert "SECRET" not in details
