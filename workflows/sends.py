"""How a workflow sends: the two channels (pixel fires for every ad platform, outbound
postbacks), each an activity with its timeout and retry policies, and what a failed send's
error means. Used by ConversionWorkflow's one send path and by the redeliveries."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.pixel_sends import DeliveryActivities
    from activities.postback_sends import OutboundActivities
    from workflows.retry_policies import (
        DELIVERY_FIRST_BACKOFF,
        DELIVERY_RETRY,
        DELIVERY_TIMEOUT,
        LOCAL_SEND_TIMEOUT,
        ONE_TRY,
        OUTBOUND_FIRST_BACKOFF,
        OUTBOUND_RETRY,
        OUTBOUND_TIMEOUT,
        delivery_retry,
        outbound_retry,
    )


@dataclass(frozen=True)
class Channel:
    """How one kind of send runs: pixel fires (every ad platform, relay/destinations/) and
    outbound postbacks differ only in these values, never in the steps of `_send`."""

    activity: Callable[[Any, Any], Awaitable[Any]]
    timeout: timedelta
    retry: RetryPolicy  # runs recorded before the retry window
    within: Callable[[timedelta], tuple[RetryPolicy, timedelta]]  # the rest of the window
    first_wait_floor: timedelta  # shape 1: the least wait after a local first try


PIXEL_SENDS = Channel(
    DeliveryActivities.send_pixel_event,
    DELIVERY_TIMEOUT,
    DELIVERY_RETRY,
    delivery_retry,
    timedelta(0),
)
POSTBACK_SENDS = Channel(
    OutboundActivities.send_outbound_postback,
    OUTBOUND_TIMEOUT,
    OUTBOUND_RETRY,
    outbound_retry,
    OUTBOUND_FIRST_BACKOFF,
)


async def local_first(
    activity: Callable[[Any, Any], Awaitable[Any]], input: Any, summary: str
) -> tuple[Any, FailureError | None]:
    """One try as a local activity: its result, or the error if it failed (a local
    activity's failure may arrive as the activity's own error, not in an ActivityError)."""
    try:
        sent = await workflow.execute_local_activity_method(
            activity,
            input,
            start_to_close_timeout=LOCAL_SEND_TIMEOUT,
            retry_policy=ONE_TRY,
            summary=summary,
        )
    except FailureError as err:
        return None, err
    return sent, None


def cause_of(err: FailureError) -> BaseException:
    return (err.cause or err) if isinstance(err, ActivityError) else err


def retryable(err: FailureError) -> bool:
    cause = cause_of(err)
    return not (isinstance(cause, ApplicationError) and cause.non_retryable)


def retry_delay(err: FailureError) -> timedelta:
    """What the platform asked for (Retry-After, throttling), else the first backoff."""
    cause = cause_of(err)
    if isinstance(cause, ApplicationError) and cause.next_retry_delay:
        return cause.next_retry_delay
    return DELIVERY_FIRST_BACKOFF


def why(err: FailureError | None) -> str:
    return "" if err is None else str(cause_of(err))
