"""Delivery states: how each send (pixel fire, outbound postback) and each conversion ends.

Pure functions, used by the workflow (deterministic) and by the API alike.
"""

from collections.abc import Iterable
from enum import StrEnum

from relay.domain.workflow_io import ConversionResult, DeliveryStateInput, SendFinal


class DeliveryState(StrEnum):
    """A conversion's state; a send's is one of pending, delivered, failed, not sendable."""

    PENDING = "pending"
    DELIVERED = "delivered"
    PARTIAL = "partial"  # some sends delivered, some failed for good
    FAILED = "failed"  # no send delivered, at least one failed for good
    NOT_SENDABLE = "not sendable"  # nothing sent: too old, or nothing planned for it
    DUPLICATE = "duplicate"
    UNATTRIBUTED = "unattributed"


SEND_STATES = (
    DeliveryState.PENDING,
    DeliveryState.DELIVERED,
    DeliveryState.FAILED,
    DeliveryState.NOT_SENDABLE,
)
# How a send that no retry or redelivery can make sendable begins its reason (an event
# older than the platform's limit): its state is "not sendable", not "failed".
NOT_SENDABLE_REASON = "not sendable"


def send_state(delivered: bool, error: str) -> DeliveryState:
    """The final state of a send from its outcome in the workflow."""
    if delivered:
        return DeliveryState.DELIVERED
    # The error reads "{type}: {message}" (e.g. "meta_permanent: not sendable: ...").
    if any(part.startswith(NOT_SENDABLE_REASON) for part in (error, error.partition(": ")[2])):
        return DeliveryState.NOT_SENDABLE
    return DeliveryState.FAILED


def conversion_state(sends: Iterable[DeliveryState]) -> DeliveryState:
    """A finished conversion's state from its sends' final states."""
    states = set(sends)
    if DeliveryState.DELIVERED in states:
        return DeliveryState.PARTIAL if len(states) > 1 else DeliveryState.DELIVERED
    if DeliveryState.FAILED in states:
        return DeliveryState.FAILED
    return DeliveryState.NOT_SENDABLE


def _final(kind: str, target_id: str, delivered: bool, error: str) -> SendFinal:
    state = send_state(delivered, error)
    return SendFinal(kind=kind, target_id=target_id, state=state, reason=error)


def finished(result: ConversionResult) -> DeliveryStateInput:
    """What a conversion's workflow records once every send is over."""
    sends = [_final("pixel", f.target.pixel_id, f.delivered, f.error) for f in result.fires]
    sends += [
        _final("postback", p.target.postback_id, p.delivered, p.error) for p in result.postbacks
    ]
    state = conversion_state(DeliveryState(s.state) for s in sends)
    return DeliveryStateInput(conversion_id=result.conversion_id, state=state.value, sends=sends)
