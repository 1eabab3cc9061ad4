"""Named retry policies and timeouts: what retries a persist, what retries a pixel send."""

from datetime import timedelta

from temporalio.common import RetryPolicy

# A ClickHouse outage delays a conversion, never loses it: retry without an attempt limit,
# backing off to one try a minute.
PERSIST_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=0,
)
PERSIST_TIMEOUT = timedelta(seconds=30)
# The first step as a local activity: each try is short; longer backoffs become timers.
PREPARE_TIMEOUT = timedelta(seconds=20)

PLAN_RETRY = PERSIST_RETRY
PLAN_TIMEOUT = timedelta(seconds=30)

# Before the retry window: three attempts with exponential backoff (product.md section 6).
# Kept so that histories recorded with it replay.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=3,
)
# Covers one HTTP call (its connect/read/write timeouts are 1.5-3 s each) and the log write;
# short, so an attempt lost with a killed worker is retried soon.
DELIVERY_TIMEOUT = timedelta(seconds=10)
# The seed's quick attempts (2 s, then 4 s apart), then transient failures (5xx, timeouts,
# throttling, connection errors) keep retrying, at most this far apart, until the retry
# window (`RELAY_DELIVERY_RETRY_WINDOW_H`) closes: a platform outage delays a fire instead
# of failing it. Permanent errors raise non-retryable errors and stop at once.
DELIVERY_MAX_INTERVAL = timedelta(minutes=10)
DELIVERY_FIRST_BACKOFF = timedelta(seconds=2)
OUTBOUND_FIRST_BACKOFF = timedelta(seconds=5)
# The first try of a send, as a local activity: one attempt; a failure that should be
# retried continues as a regular activity (after the first backoff or the Retry-After).
ONE_TRY = RetryPolicy(maximum_attempts=1)
LOCAL_SEND_TIMEOUT = timedelta(seconds=10)

# Traffic sources are often down for minutes: longer first backoff. 2xx is success;
# 5xx, 429 and connection errors retry; other answers are permanent (non-retryable).
OUTBOUND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=5,
)
OUTBOUND_TIMEOUT = timedelta(seconds=30)


def _window_retry(first: timedelta, window: timedelta) -> tuple[RetryPolicy, timedelta]:
    policy = RetryPolicy(
        initial_interval=first,
        backoff_coefficient=2.0,
        maximum_interval=DELIVERY_MAX_INTERVAL,
        maximum_attempts=0,
    )
    return policy, window


def delivery_retry(window: timedelta) -> tuple[RetryPolicy, timedelta]:
    """A pixel send's retry policy and its schedule-to-close timeout (the retry window)."""
    return _window_retry(DELIVERY_FIRST_BACKOFF, window)


def outbound_retry(window: timedelta) -> tuple[RetryPolicy, timedelta]:
    """An outbound postback's retry policy and its retry window."""
    return _window_retry(OUTBOUND_FIRST_BACKOFF, window)
