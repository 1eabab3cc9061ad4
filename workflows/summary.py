"""The one line a conversion's run shows in the Temporal UI ("current details"): each send
and how it ended, e.g. "Meta 'Meta main' ✔ · TikTok 'TikTok main' ✘ tiktok code 40105".
Deterministic: built from the run's result only."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from relay.destinations.registry import PLATFORMS
    from relay.domain.workflow_io import ConversionResult

_REASON_MAX = 80


def _reason(error: str) -> str:
    """The reason without the error type's prefix ("meta_permanent: "), cut short."""
    head, sep, rest = error.partition(": ")
    text = rest if sep and "_" in head and " " not in head else error
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"


def run_summary(result: ConversionResult) -> str:
    """Each send with ✔ or ✘ and why; or why nothing was sent."""
    if result.skipped and not (result.fires or result.postbacks):
        return f"not sent: {result.skipped}"
    parts = []
    for fire in result.fires:
        target = fire.target
        label = (
            PLATFORMS[target.platform].label if target.platform in PLATFORMS else target.platform
        )
        parts.append(f"{label} {target.pixel_name!r} " + _mark(fire.delivered, fire.error))
    for postback in result.postbacks:
        parts.append(
            f"postback {postback.target.postback_id} " + _mark(postback.delivered, postback.error)
        )
    return " · ".join(parts) if parts else "nothing to send: no pixel or postback for this event"


def _mark(delivered: bool, error: str) -> str:
    return "✔" if delivered else f"✘ {_reason(error) or 'failed'}"
