"""The forwarder: drains the inbox into conversion workflows, at least once.

Starts are idempotent by conversion ID (the workflow ID), so an entry forwarded twice (a
crash between the start and the removal) starts nothing new. An entry leaves the inbox only
once Temporal has its workflow; while Temporal is down, entries wait and are retried with
capped backoff, and the API keeps accepting.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from relay.claims import temporal_claims
from relay.inbox import Inbox, PendingEntry
from relay.models import Conversion
from relay.search_attributes import at_start
from relay.workflow_io import CURRENT_SHAPE, ConversionInput
from workflows.conversion import ConversionWorkflow

log = logging.getLogger(__name__)
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
_MEMORY_SWEEP_S = 3600.0

StartFn = Callable[[PendingEntry], Awaitable[None]]
# While postbacks are being answered more than half the time, accepting comes first: the
# inbox holds the rest, and forwarding slows to one start per CONGESTED_PAUSE_S, enough
# that a long overload still delivers, too little to slow the answers (a conversion costs
# the process about 25 ms of CPU; at 10 starts a second the worker took a quarter of it
# from the answers under wrk, bench/relay_up.py phase (b)).
BUSY_SHARE = 0.5
CONGESTED_PAUSE_S = 1.0


class Pressure:
    """The share of recent time the API spent with a postback in hand."""

    def __init__(self, window_s: float = 0.25) -> None:
        self._window_s = window_s
        self._in_flight = 0
        self._busy_since = 0.0
        self._busy_s = 0.0  # in the current window
        self._window_start = time.monotonic()
        self._share = 0.0  # of the last full window

    def enter(self) -> None:
        if self._in_flight == 0:
            self._busy_since = time.monotonic()
        self._in_flight += 1

    def exit(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._busy_s += time.monotonic() - self._busy_since

    @property
    def high(self) -> bool:
        now = time.monotonic()
        if now - self._window_start >= self._window_s:
            busy = self._busy_s + (now - self._busy_since if self._in_flight else 0.0)
            self._share = busy / (now - self._window_start)
            self._busy_s, self._window_start = 0.0, now
            if self._in_flight:
                self._busy_since = now
        return self._share > BUSY_SHARE


def workflow_starter(
    client: Client,
    task_queue: str,
    eager: bool,
    shared_dedup: bool,
    search_attributes: bool = False,
) -> StartFn:
    """How one inbox entry becomes a workflow. With several API replicas (`shared_dedup`),
    each with its own inbox, Temporal's workflow-ID uniqueness decides across them which
    postback is the first for its transaction ID and for its click and event. With
    `search_attributes` (the namespace has them), the run starts with its IDs and state."""

    async def start(entry: PendingEntry) -> None:
        conversion = Conversion.model_validate_json(entry.body)
        input = ConversionInput(
            conversion=conversion,
            claim_holder=entry.claim_holder,
            search_attributes=search_attributes,
            shape=CURRENT_SHAPE,
        )
        if shared_dedup:
            input = await temporal_claims(client, task_queue, input)
        # Already started: a resend past the inbox's memory, or a repeated forward.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await client.start_workflow(
                ConversionWorkflow.run,
                input,
                id=conversion.conversion_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                request_eager_start=eager,
                static_summary=f"{conversion.event_type} on click {conversion.click_id}",
                search_attributes=at_start(conversion) if search_attributes else None,
            )

    return start


class Forwarder:
    """`concurrency` starts in flight; entries are taken oldest first."""

    def __init__(self, inbox: Inbox, start: StartFn, concurrency: int = 32) -> None:
        self._inbox = inbox
        self._start = start
        self._concurrency = concurrency
        self._queue: asyncio.Queue[PendingEntry] = asyncio.Queue(maxsize=concurrency * 2)
        self._wake = asyncio.Event()
        self._done: list[str] = []
        self._done_flush = asyncio.Event()
        self.forwarded = 0
        self.retries = 0
        self.pressure = Pressure()

    def notify(self) -> None:
        """A postback was accepted: look at the inbox now."""
        self._wake.set()

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._feed(), name="forwarder-feed"),
        ]
        tasks += [
            asyncio.create_task(self._forward(n), name=f"forwarder-{n}")
            for n in range(self._concurrency)
        ]
        tasks.append(asyncio.create_task(self._flush(), name="forwarder-flush"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._done:  # what was started but not yet removed: remove it now
                await self._inbox.forwarded(self._done)

    async def _feed(self) -> None:
        cursor, swept = 0, time.monotonic()
        while True:
            self._wake.clear()
            entries = await self._inbox.take(cursor, self._concurrency * 4)
            for entry in entries:
                await self._queue.put(entry)
                cursor = entry.seq
            if time.monotonic() - swept > _MEMORY_SWEEP_S:
                swept = time.monotonic()
                forgotten = await self._inbox.forget_older()
                log.info("inbox forgot %d accepted conversions past its memory", forgotten)
            if not entries:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def _forward(self, n: int) -> None:
        while True:
            # While the API is saturated, one forwarding task goes on, slowly: a burst is
            # answered first and delivered after, never starved.
            while self.pressure.high and n > 0:  # noqa: ASYNC110 - a rate, not an event
                await asyncio.sleep(CONGESTED_PAUSE_S)
            if self.pressure.high:
                await asyncio.sleep(CONGESTED_PAUSE_S)
            entry = await self._queue.get()
            await self._start_until_done(entry)
            self._done.append(entry.conversion_id)
            self._done_flush.set()
            self.forwarded += 1

    async def _start_until_done(self, entry: PendingEntry) -> None:
        failures = 0
        while True:
            try:
                await self._start(entry)
                if failures:
                    log.info("forwarded %s after %d failed starts", entry.conversion_id, failures)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Temporal down or refusing: the entry stays in the inbox and is retried.
                delay = _BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)]
                if failures in (0, 10) or failures % 100 == 0:
                    log.warning(
                        "could not start %s (%s: %s); retrying",
                        entry.conversion_id,
                        type(exc).__name__,
                        exc,
                    )
                failures += 1
                self.retries += 1
                await asyncio.sleep(delay)

    async def _flush(self) -> None:
        """Remove forwarded entries in groups: one inbox commit for many starts."""
        while True:
            await self._done_flush.wait()
            self._done_flush.clear()
            done, self._done = self._done, []
            if done:
                await self._inbox.forwarded(done)
