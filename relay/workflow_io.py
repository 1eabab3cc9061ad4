"""Inputs and results of the conversion workflow and its activities.

They travel through Temporal's history with the pydantic data converter, so they hold IDs,
hashes and outcomes only: never an access token, never a raw email or phone number.
Grow them by adding defaulted fields so recorded histories keep replaying.
"""

from pydantic import BaseModel

from relay.models import Conversion, Platform


class ConversionInput(BaseModel):
    """The workflow's input: the conversion as accepted from the postback."""

    conversion: Conversion


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


class SendPixelInput(BaseModel):
    conversion_id: str
    target: PixelTarget


class SendPixelResult(BaseModel):
    http_status: int | None = None
    attempt: int = 1


class FireOutcome(BaseModel):
    """How one planned fire ended; a failed fire is kept for redelivery, not raised."""

    target: PixelTarget
    delivered: bool
    error: str = ""


class SendPostbackInput(BaseModel):
    conversion_id: str
    target: PostbackTarget


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
