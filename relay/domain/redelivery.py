"""Redelivery: which sends of a finished conversion are sent again, and how it went.

Pure functions and the models that travel through Temporal, used by the API (to answer at
once what will be done), by the redelivery activity (to plan from the stores) and by the
workflows (deterministic). A redelivery repeats the same send (same pixel, same platform
event name, same `event_id`, the conversion ID), so a platform that got it after all
deduplicates; a send already delivered is never sent again.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from relay.domain.delivery_states import DeliveryState, conversion_state
from relay.domain.models import Conversion, PixelFire, Platform, PostbackAttempt
from relay.domain.workflow_io import DeliveryStateInput, PixelTarget, PostbackTarget, SendFinal

REDELIVER_PREFIX = "redeliver_"
BULK_PREFIX = "redeliveries_"
LISTED_IDS = 100  # conversion IDs a bulk redelivery's progress lists per outcome, at most


class Action(StrEnum):
    """What a redelivery does with one send of the conversion, then how it ended."""

    REDELIVER = "redeliver"  # planned: sent again
    ALREADY_DELIVERED = "already delivered"  # nothing sent
    NOT_SENDABLE = "not sendable"  # too old for the platform: nothing sent
    DELIVERED = "delivered"  # redelivered and delivered
    FAILED = "failed"  # redelivered and failed again


class SendAction(BaseModel):
    kind: str  # "pixel" or "postback"
    target_id: str  # the pixel's or the postback's ID
    action: Action
    reason: str = ""


class PlannedPixel(BaseModel):
    target: PixelTarget
    attempt_offset: int  # attempts logged before: the first new one is numbered after them


class PlannedPostback(BaseModel):
    target: PostbackTarget
    attempt_offset: int


class RedeliveryInput(BaseModel):
    """One conversion's redelivery: every failed send, or the one pixel or postback given,
    or (from a bulk redelivery by platform) its pixels on that platform."""

    conversion_id: str
    pixel_id: str = ""
    postback_id: str = ""
    platform: str = ""
    # Started with search attributes (the namespace has them): upsert the state at the end.
    search_attributes: bool = False


class RedeliveryFilter(BaseModel):
    """Which conversions a bulk redelivery takes: finished ones in one of `states`,
    received in [since, until), narrowed by campaign, network, pixel or platform."""

    states: list[DeliveryState] = [DeliveryState.FAILED, DeliveryState.PARTIAL]
    campaign_id: str | None = None
    network_id: str | None = None
    pixel_id: str | None = None
    platform: Platform | None = None
    since: datetime | None = None
    until: datetime | None = None


class RedeliveryPlan(BaseModel):
    conversion_id: str
    actions: list[SendAction] = []  # every send considered, with what is done with it
    pixels: list[PlannedPixel] = []
    postbacks: list[PlannedPostback] = []
    record: DeliveryStateInput | None = None  # the state recorded before

    @property
    def sends_anything(self) -> bool:
        return bool(self.pixels or self.postbacks)


class Outcome(StrEnum):
    """How one conversion's redelivery ended, as the bulk redelivery counts it."""

    DELIVERED = "delivered"  # every send redelivered was delivered
    FAILED = "failed"  # at least one failed again
    NOT_SENDABLE = "not sendable"  # nothing sent: its failed sends are too old
    NOTHING_TO_SEND = "nothing to send"  # nothing failed (delivered meanwhile, or no send)


class RedeliveryResult(BaseModel):
    conversion_id: str
    outcome: Outcome
    state: str  # the conversion's delivery state afterwards
    sends: list[SendAction] = []


class BulkProgress(BaseModel):
    """How far a bulk redelivery is; `total` is counted when it starts (and grows if more
    conversions match meanwhile)."""

    total: int = 0
    done: int = 0
    delivered: int = 0
    failed: int = 0
    not_sendable: int = 0  # too old for the platforms: nothing sent, reported here
    nothing_to_send: int = 0  # delivered meanwhile, or nothing of the filter's failed
    finished: bool = False
    failed_ids: list[str] = []  # the first LISTED_IDS
    not_sendable_ids: list[str] = []


class BulkInput(BaseModel):
    where: RedeliveryFilter
    rate_per_s: float = 10.0
    page_size: int = 100
    search_attributes: bool = False
    # Carried over by continue-as-new: what is done, and the last conversion taken.
    progress: BulkProgress | None = None
    after_at: datetime | None = None
    after_id: str = ""


class NotRedeliverable(ValueError):
    """The conversion or the send asked for cannot be redelivered; `param` names why."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def too_old(conversion: Conversion, now: datetime, max_age_days: int) -> bool:
    """Past the platforms' limit on event age (the event time is when it was received)."""
    return now - conversion.received_at > timedelta(days=max_age_days)


def _last(attempts: Sequence[PixelFire] | Sequence[PostbackAttempt]) -> int:
    return max((a.attempt for a in attempts), default=0)


def plan_redelivery(
    input: RedeliveryInput,
    conversion: Conversion,
    record: DeliveryStateInput | None,
    fires: Sequence[PixelFire],
    postbacks: Sequence[PostbackAttempt],
    now: datetime,
    max_age_days: int,
) -> RedeliveryPlan:
    """What a redelivery of this conversion does with each of its sends (from the recorded
    final states and the attempt logs). Raises NotRedeliverable for a conversion whose
    delivery has not ended, or a pixel or postback that is not one of its sends."""
    if conversion.is_duplicate or not conversion.attributed:
        kind = "a duplicate" if conversion.is_duplicate else "unattributed"
        raise NotRedeliverable(
            f"conversion {conversion.conversion_id} is {kind}: it is never delivered",
            "conversion_id",
        )
    if record is None:
        raise NotRedeliverable(
            f"conversion {conversion.conversion_id} has no final delivery state yet: its "
            "delivery is still going on (or it was never planned to be sent)",
            "conversion_id",
        )
    wanted = [
        s
        for s in record.sends
        if (not input.pixel_id or (s.kind, s.target_id) == ("pixel", input.pixel_id))
        and (not input.postback_id or (s.kind, s.target_id) == ("postback", input.postback_id))
    ]
    for param, value in (("pixel_id", input.pixel_id), ("postback_id", input.postback_id)):
        if value and not wanted:
            raise NotRedeliverable(f"{value} is not a send of this conversion", param)
    plan = RedeliveryPlan(conversion_id=conversion.conversion_id, record=record)
    old = too_old(conversion, now, max_age_days)
    for send in wanted:
        if send.kind == "pixel":
            pixel_fires = [f for f in fires if f.pixel_id == send.target_id]
            if input.platform and not any(f.platform == input.platform for f in pixel_fires):
                continue
            _plan_pixel(plan, send, pixel_fires, old, max_age_days)
        elif not input.platform:
            sent = [p for p in postbacks if p.postback_id == send.target_id]
            _plan_postback(plan, send, sent)
    return plan


def _skip(send: SendFinal, succeeded: bool) -> SendAction | None:
    if succeeded or send.state == DeliveryState.DELIVERED:
        return SendAction(kind=send.kind, target_id=send.target_id, action=Action.ALREADY_DELIVERED)
    if send.state == DeliveryState.NOT_SENDABLE:
        return SendAction(
            kind=send.kind, target_id=send.target_id, action=Action.NOT_SENDABLE, reason=send.reason
        )
    return None


def _plan_pixel(
    plan: RedeliveryPlan, send: SendFinal, fires: list[PixelFire], old: bool, max_age_days: int
) -> None:
    skipped = _skip(send, any(f.success for f in fires))
    if skipped is None and old:
        reason = f"not sendable: older than the platforms' {max_age_days}-day limit"
        skipped = SendAction(
            kind="pixel", target_id=send.target_id, action=Action.NOT_SENDABLE, reason=reason
        )
    if skipped is None and not fires:
        reason = "not sendable: no earlier attempt says which event to send"
        skipped = SendAction(
            kind="pixel", target_id=send.target_id, action=Action.NOT_SENDABLE, reason=reason
        )
    if skipped is not None:
        plan.actions.append(skipped)
        return
    last = fires[-1]
    target = PixelTarget(
        pixel_id=last.pixel_id,
        platform=Platform(last.platform),
        pixel_name=last.pixel_name,
        event_name=last.event_name,
    )
    plan.pixels.append(PlannedPixel(target=target, attempt_offset=_last(fires)))
    plan.actions.append(SendAction(kind="pixel", target_id=send.target_id, action=Action.REDELIVER))


def _plan_postback(plan: RedeliveryPlan, send: SendFinal, sent: list[PostbackAttempt]) -> None:
    """Outbound postbacks go to traffic sources, which set no age limit."""
    skipped = _skip(send, any(p.success for p in sent))
    if skipped is not None:
        plan.actions.append(skipped)
        return
    method = sent[-1].method if sent else "GET"
    target = PostbackTarget(postback_id=send.target_id, method=method)
    plan.postbacks.append(PlannedPostback(target=target, attempt_offset=_last(sent)))
    plan.actions.append(
        SendAction(kind="postback", target_id=send.target_id, action=Action.REDELIVER)
    )


def finish(plan: RedeliveryPlan, outcomes: dict[tuple[str, str], str]) -> DeliveryStateInput:
    """The conversion's new record: the previous one with each redelivered send's new end
    (`outcomes` maps (kind, target ID) to the error, '' when delivered)."""
    assert plan.record is not None
    sends = []
    for send in plan.record.sends:
        error = outcomes.get((send.kind, send.target_id))
        if error is None:
            sends.append(send)
        elif error == "":
            sends.append(send.model_copy(update={"state": DeliveryState.DELIVERED, "reason": ""}))
        else:
            sends.append(send.model_copy(update={"state": DeliveryState.FAILED, "reason": error}))
    state = conversion_state(DeliveryState(s.state) for s in sends)
    return DeliveryStateInput(conversion_id=plan.conversion_id, state=state.value, sends=sends)


def result_of(
    plan: RedeliveryPlan, outcomes: dict[tuple[str, str], str], state: str
) -> RedeliveryResult:
    """What the redelivery of one conversion did, send by send."""
    sends = []
    for action in plan.actions:
        error = outcomes.get((action.kind, action.target_id))
        if action.action == Action.REDELIVER and error is not None:
            ended = Action.DELIVERED if error == "" else Action.FAILED
            action = action.model_copy(update={"action": ended, "reason": error})
        sends.append(action)
    ends = {s.action for s in sends}
    if Action.FAILED in ends:
        outcome = Outcome.FAILED
    elif Action.DELIVERED in ends:
        outcome = Outcome.DELIVERED
    elif Action.NOT_SENDABLE in ends:
        outcome = Outcome.NOT_SENDABLE
    else:
        outcome = Outcome.NOTHING_TO_SEND
    return RedeliveryResult(
        conversion_id=plan.conversion_id, outcome=outcome, state=state, sends=sends
    )


def redelivery_id(conversion_id: str, attempts: int, target: str = "") -> str:
    """Deterministic and new for each redelivery that follows a logged attempt: the same
    request twice at once starts one workflow; once it has sent, the next gets a new ID."""
    return f"{REDELIVER_PREFIX}{conversion_id}_{attempts}" + (f"_{target}" if target else "")
