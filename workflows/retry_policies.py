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

PLAN_RETRY = PERSIST_RETRY
PLAN_TIMEOUT = timedelta(seconds=30)

# Three attempts with exponential backoff (product.md section 6). Permanent platform errors
# raise non-retryable errors; throttling answers set next_retry_delay from Retry-After.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=3,
)
# Covers loading the pixel, one HTTP call (its connect/read/write timeouts are 1.5-3 s each)
# and the log write; short, so an attempt lost with a killed worker is retried soon.
DELIVERY_TIMEOUT = timedelta(seconds=10)

# Traffic sources are often down for minutes: more attempts, longer backoff. 2xx is success;
# 5xx, 429 and connection errors retry; other answers are permanent (non-retryable).
OUTBOUND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=5,
)
OUTBOUND_TIMEOUT = timedelta(seconds=30)
