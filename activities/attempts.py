"""What every delivery attempt does at its end, pixel fire or outbound postback alike."""

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from relay.config_cache import ConfigCache
from relay.models import Click, Pixel
from relay.platforms.classify import Classification, Verdict
from relay.store.click_cache import ClickCache
from relay.store.pool import STORE_ERRORS

T = TypeVar("T")
_STORE_RETRY_DELAYS_S = (0.5, 1.0, 2.0)

RESPONSE_LOG_LIMIT = 8 * 1024
RETRY_DELAY_CAP_S = 3600.0  # the default of RELAY_RETRY_DELAY_CAP_S


def bounded(response_text: str) -> tuple[str, bool]:
    """The response body as logged (at most 8 KiB) and whether it was cut."""
    return response_text[:RESPONSE_LOG_LIMIT], len(response_text) > RESPONSE_LOG_LIMIT


def raise_for_verdict(
    verdict: Classification, reason: str, kind: str, cap_s: float = RETRY_DELAY_CAP_S
) -> None:
    """Return on delivery; otherwise raise so Temporal retries (honouring the platform's
    requested delay, at most `cap_s`) or, for a permanent failure, stops retrying."""
    if verdict.verdict == Verdict.DELIVERED:
        return
    wait = min(verdict.retry_after_s, cap_s) if verdict.retry_after_s else None
    delay = timedelta(seconds=wait) if wait else None
    raise ApplicationError(
        reason,
        type=f"{kind}_{verdict.verdict.value}",
        non_retryable=verdict.verdict == Verdict.PERMANENT,
        next_retry_delay=delay,
    )


async def store_call(call: Callable[..., T], *args: Any) -> T:
    """A blocking ClickHouse call, off the event loop, retried briefly in place: a blip in
    the store must not use up one of the platform's three delivery attempts."""
    for delay in _STORE_RETRY_DELAYS_S:
        try:
            return await asyncio.to_thread(call, *args)
        except STORE_ERRORS as exc:
            activity.logger.warning("store call failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(delay)
    return await asyncio.to_thread(call, *args)


async def store_submit(submit: Callable[[], "Future[None]"]) -> None:
    """A group-committed write, awaited without holding a thread; retried like store_call."""
    for delay in _STORE_RETRY_DELAYS_S:
        try:
            return await asyncio.wrap_future(submit())
        except STORE_ERRORS as exc:
            activity.logger.warning("store write failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(delay)
    return await asyncio.wrap_future(submit())


async def cached_pixel(config: ConfigCache, pixel_id: str) -> tuple[Pixel, str]:
    """The pixel and its encrypted token from the configuration cache; a pixel that is
    not there after a reload was deleted, which no retry mends."""
    for load in (config.current, config.after_miss):
        snapshot = await load()
        pixel, sealed = snapshot.pixels.get(pixel_id), snapshot.tokens.get(pixel_id)
        if pixel is not None and sealed is not None:
            return pixel, sealed
    raise ApplicationError(f"pixel {pixel_id} was deleted", non_retryable=True)


async def cached_click(clicks: ClickCache, click_id: str) -> Click | None:
    """The click from memory without leaving the event loop, else read from ClickHouse."""
    return clicks.cached(click_id) or await store_call(clicks.get, click_id)
