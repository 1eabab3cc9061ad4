"""Inputs and results of the conversion workflow and its activities.

They travel through Temporal's history with the pydantic data converter, so they hold IDs,
hashes and outcomes only: never an access token, never a raw email or phone number.
Grow them by adding defaulted fields so recorded histories keep replaying.
"""

from typing import Any

from pydantic import BaseModel, model_validator

from relay.domain.models import Conversion, PixelFire, Platform, PostbackAttemptRow


class ConversionInput(BaseModel):
    """The workflow's input: the conversion as accepted from the postback.

    From the inbox on, the accept step does not read the click: `campaign_id`, a default
    `currency`, `attributed` and `is_duplicate` are decided by `prepare_conversion`, helped
    by the holders of the dedup claims ('' when none was taken)."""

    conversion: Conversion
    claim_holder: str = ""  # the first conversion accepted for this click and event type
    txid_holder: str = ""  # with shared dedup: the first for this network, event and txid
    # The namespace has Relay's search attributes (relay/temporal/search_attributes.py): the run
    # upserts its campaign and delivery state as it goes.
    search_attributes: bool = False
    # The run's shape, fixed when it starts. 0: runs started before shapes, whose branches
    # follow the `workflow.patched` markers they recorded. 1: the prepare step, local first
    # tries and the recorded delivery state, all without markers (each patch marker also
    # costs an upsert of TemporalChangeVersion, and every upsert a visibility write on the
    # server), and its search attributes upserted once, when it ends or first waits to retry.
    # 2: as 1, but every send is a regular activity from its first try, so a send that
    # completed is in the history at once, not when the workflow task ends (a crash
    # re-sends only what was in flight), and an attempt row that could not be written is
    # written from the send's result by its own activity.
    shape: int = 0


# The shape new runs start with (relay/ingest/forwarder.py). Workflow code never compares against
# it: each behaviour tests its own floor (workflows/conversion.py), so it can move.
# Workflow type names, for the processes that start them without importing workflows/.
CONVERSION_WORKFLOW = "ConversionWorkflow"
CLAIM_WORKFLOW = "DedupClaimWorkflow"
CURRENT_SHAPE = 2


class PersistResult(BaseModel):
    """Whether this run recorded the conversion, or an earlier run already had."""

    recorded_by_earlier_run: bool = False


class PlanInput(BaseModel):
    conversion_id: str
    campaign_id: str
    event_type: str


class PixelTarget(BaseModel):
    """One planned fire: which pixel, which platform event name."""

    pixel_id: str
    platform: Platform
    pixel_name: str
    event_name: str


class PostbackTarget(BaseModel):
    """One planned outbound postback to a traffic source."""

    postback_id: str
    method: str = "GET"


class DeliveryPlan(BaseModel):
    pixels: list[PixelTarget] = []
    postbacks: list[PostbackTarget] = []


class Prepared(BaseModel):
    """The conversion as recorded (decided), and every send planned for it."""

    conversion: Conversion
    recorded_by_earlier_run: bool = False
    skipped: str = ""
    pixels: list[PixelTarget] = []
    postbacks: list[PostbackTarget] = []
    retry_window_s: int = 86_400


class SendPixelInput(BaseModel):
    """`conversion` is carried from the plan (None in runs that predate it: then the
    activity reads it from ClickHouse)."""

    conversion_id: str
    target: PixelTarget
    conversion: Conversion | None = None
    attempt_offset: int = 0  # attempts made before this activity (the local first try)


class SendPixelResult(BaseModel):
    http_status: int | None = None
    attempt: int = 1
    # The delivered attempt's row when it could not be written in time: the workflow
    # records it with its own activity (never by sending again).
    unlogged: PixelFire | None = None


class FireOutcome(BaseModel):
    """How one planned fire ended; a failed fire is kept for redelivery, not raised."""

    target: PixelTarget
    delivered: bool
    error: str = ""


class SendPostbackInput(BaseModel):
    conversion_id: str
    target: PostbackTarget
    conversion: Conversion | None = None
    attempt_offset: int = 0


class SendPostbackResult(BaseModel):
    """What `send_outbound_postback` returns; histories recorded before this model hold
    the bare HTTP status, read as `http_status`."""

    http_status: int = 0
    attempt: int = 1
    unlogged: PostbackAttemptRow | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_status(cls, data: Any) -> Any:
        return {"http_status": data} if isinstance(data, int) else data


class PostbackOutcome(BaseModel):
    target: PostbackTarget
    delivered: bool
    error: str = ""


class ClaimInput(BaseModel):
    """Input of the dedup claim workflow: the conversion that holds the claim."""

    conversion_id: str


class ConversionResult(BaseModel):
    conversion_id: str
    skipped: str = ""
    fires: list[FireOutcome] = []
    postbacks: list[PostbackOutcome] = []


class SendFinal(BaseModel):
    """How one send ended for good: `kind` is "pixel" or "postback", `target_id` the pixel
    or postback ID, `state` delivered, failed or not sendable."""

    kind: str
    target_id: str
    state: str
    reason: str = ""


class DeliveryStateInput(BaseModel):
    """A finished conversion's delivery state and its sends', recorded by the workflow."""

    conversion_id: str
    state: str
    sends: list[SendFinal] = []
