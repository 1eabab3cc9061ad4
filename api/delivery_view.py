"""How a conversion's sends stand, as the API shows them: each send's state and which of
its attempts was the last (`final`)."""

from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel

from relay.domain.delivery_states import DeliveryState, send_state
from relay.domain.models import DeliveryAttempt, PixelFire, PostbackAttempt
from relay.domain.workflow_io import DeliveryStateInput

SendKind = Literal["pixel", "postback"]
A = TypeVar("A", bound=DeliveryAttempt)


class PixelFireOut(PixelFire):
    final: bool = False  # no attempt of this fire follows: it was delivered or ended


class PostbackAttemptOut(PostbackAttempt):
    final: bool = False


class SendOut(BaseModel):
    """One pixel fire or outbound postback of the conversion, however many attempts."""

    kind: SendKind
    target_id: str  # the pixel's or the postback's ID
    state: DeliveryState  # pending, delivered, failed or not sendable
    attempts: int
    reason: str = ""  # why it failed, when it did


def _state(attempts: Sequence[DeliveryAttempt], recorded: str | None) -> DeliveryState:
    """The workflow's record once the conversion is finished; before, what the attempts
    say (a delivered or a permanently refused attempt ends its send)."""
    if recorded:
        return DeliveryState(recorded)
    if any(a.success for a in attempts):
        return DeliveryState.DELIVERED
    last = attempts[-1] if attempts else None
    if last is not None and last.verdict == "permanent":
        return send_state(False, last.error)
    return DeliveryState.PENDING


def _send(
    kind: SendKind,
    target_id: str,
    attempts: Sequence[DeliveryAttempt],
    record: DeliveryStateInput | None,
) -> SendOut:
    recorded = next(
        (s for s in (record.sends if record else []) if (s.kind, s.target_id) == (kind, target_id)),
        None,
    )
    state = _state(attempts, recorded.state if recorded else None)
    reason = recorded.reason if recorded else ""
    if not reason and state != DeliveryState.DELIVERED and attempts:
        reason = attempts[-1].error
    return SendOut(
        kind=kind, target_id=target_id, state=state, attempts=len(attempts), reason=reason
    )


def _sends(
    kind: SendKind,
    attempts: Sequence[A],
    target: Callable[[A], str],
    record: DeliveryStateInput | None,
) -> tuple[set[int], list[SendOut]]:
    """Each send's state, and the attempts (by id()) that ended their send."""
    groups: dict[str, list[A]] = {}
    for a in attempts:
        groups.setdefault(target(a), []).append(a)
    planned = [s.target_id for s in record.sends if s.kind == kind] if record else []
    targets = dict.fromkeys(planned + list(groups))
    sends = [_send(kind, t, groups.get(t, []), record) for t in targets]
    ended = {s.target_id for s in sends if s.state != DeliveryState.PENDING}
    return {id(g[-1]) for t, g in groups.items() if t in ended}, sends


def pixel_sends(
    fires: Sequence[PixelFire], record: DeliveryStateInput | None
) -> tuple[list[PixelFireOut], list[SendOut]]:
    """The attempts (oldest first) with the last one of each ended fire marked final."""
    last, sends = _sends("pixel", fires, lambda f: f.pixel_id, record)
    return [PixelFireOut(**f.model_dump(), final=id(f) in last) for f in fires], sends


def postback_sends(
    attempts: Sequence[PostbackAttempt], record: DeliveryStateInput | None
) -> tuple[list[PostbackAttemptOut], list[SendOut]]:
    last, sends = _sends("postback", attempts, lambda a: a.postback_id, record)
    return [PostbackAttemptOut(**a.model_dump(), final=id(a) in last) for a in attempts], sends
