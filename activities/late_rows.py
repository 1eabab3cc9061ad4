"""Attempt rows of failed attempts that could not be stored within the attempt's wait
(activities.attempts.log_attempt): this worker keeps writing them in the background, retried
with backoff until the store takes them, while it runs. (A delivered attempt's row goes back
to the workflow instead, which records it durably.) A row whose write is still queued when
the wait ends is left to that write, and retried here only if it fails: never written twice."""

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future

from relay.core.supervision import backoff
from relay.store.pool import STORE_ERRORS

log = logging.getLogger(__name__)
_WRITING: set["asyncio.Task[None]"] = set()


def keep_writing(submit: Callable[[], "Future[None]"], late: "asyncio.Future[None] | None") -> None:
    """Write `submit`'s row until stored. `late`: its write still queued, whose failure
    starts the retries; None when the last write failed."""
    if late is None:
        _start(submit)
        return

    def settled(write: "asyncio.Future[None]") -> None:
        if write.cancelled() or write.exception() is not None:
            _start(submit)

    late.add_done_callback(settled)


def writing() -> int:
    """How many rows are being written late now."""
    return len(_WRITING)


def _start(submit: Callable[[], "Future[None]"]) -> None:
    task = asyncio.get_running_loop().create_task(_until_stored(submit), name="late-row")
    _WRITING.add(task)
    task.add_done_callback(_WRITING.discard)


async def _until_stored(submit: Callable[[], "Future[None]"]) -> None:
    failures = 0
    while True:
        try:
            await asyncio.wrap_future(submit())
        except STORE_ERRORS as exc:
            failures += 1
            if failures in (1, 10) or failures % 100 == 0:
                log.warning("an attempt row is still not stored (%s); retrying", type(exc).__name__)
            await asyncio.sleep(backoff(failures))
            continue
        if failures:
            log.info("an attempt row was stored late, after %d failed writes", failures)
        return
