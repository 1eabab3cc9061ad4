"""The forwarder: drains the inbox into conversion workflows, at least once.

Starts are idempotent by conversion ID (the workflow ID), so an entry forwarded twice (a
crash between the start and the removal) starts nothing new. An entry leaves the inbox only
once Temporal has its workflow; while Temporal is down, entries wait and are retried with
capped backoff, and the API keeps accepting.

Nothing here stops on a fault: a start that fails is retried, an inbox that cannot be read
is read again, and forwarded entries the inbox could not remove (a commit failing, disk
full) are kept and removed again, with backoff. Meanwhile part `forwarder` reports stuck,
naming the cause, and ok once it makes progress again; `running_intake` runs the whole
forwarder under `supervise`, which restarts it should anything else escape.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from relay.core.supervision import PARTS, Faults, Part, backoff
from relay.domain.models import Conversion
from relay.domain.workflow_io import CONVERSION_WORKFLOW, CURRENT_SHAPE, ConversionInput
from relay.ingest.claims import temporal_claims
from relay.ingest.inbox import Inbox, PendingEntry
from relay.temporal.search_attributes import at_start

log = logging.getLogger(__name__)
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
_MEMORY_SWEEP_S = 3600.0
_MEMORY_SWEEP_RETRY_S = 60.0

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
                CONVERSION_WORKFLOW,
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

    def __init__(
        self, inbox: Inbox, start: StartFn, concurrency: int = 32, part: Part | None = None
    ) -> None:
        self._inbox = inbox
        self._start = start
        self._concurrency = concurrency
        self._queue: asyncio.Queue[PendingEntry] = asyncio.Queue(maxsize=concurrency * 2)
        self._wake = asyncio.Event()
        # Started, not yet removed from the inbox; kept until a removal commits.
        self._done: list[str] = []
        self._done_flush = asyncio.Event()
        self.part = part or PARTS.part("forwarder")
        self._faults = Faults(self.part)
        self.forwarded = 0
        self.retries = 0
        self.pressure = Pressure()

    def notify(self) -> None:
        """A postback was accepted: look at the inbox now."""
        self._wake.set()

    async def run(self) -> None:
        """Forward until cancelled. Raises only on a bug; run it again then (`supervise`):
        what was taken but not started is taken again, and what was started but not
        removed is kept."""
        self._faults = Faults(self.part)  # ok again once this run makes progress
        self._queue = asyncio.Queue(maxsize=self._concurrency * 2)
        if self._done:  # kept from the last run
            self._done_flush.set()
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
            await self._remove_done_once()

    async def _remove_done_once(self) -> None:
        """On the way out: remove what was started; if the inbox cannot, those entries
        stay there and are forwarded again (harmlessly) by the next run or start."""
        if not self._done:
            return
        try:
            await self._inbox.forwarded(self._done)
            self._done = []
        except Exception as exc:
            log.warning(
                "%d forwarded postbacks stay in the inbox (%s: %s); they are forwarded "
                "again, which starts nothing new",
                len(self._done),
                type(exc).__name__,
                exc,
            )

    async def _feed(self) -> None:
        cursor, swept, failures = 0, time.monotonic(), 0
        while True:
            self._wake.clear()
            try:
                entries = await self._inbox.take(cursor, self._concurrency * 4)
            except Exception as exc:
                failures += 1
                self._faults.fail(
                    "take", f"cannot read the inbox ({type(exc).__name__}: {exc}); retrying", exc
                )
                await asyncio.sleep(backoff(failures))
                continue
            failures = 0
            self._faults.clear("take")  # also the first report of a run: ok
            for entry in entries:
                await self._queue.put(entry)
                cursor = entry.seq
            if time.monotonic() - swept > _MEMORY_SWEEP_S:
                swept = time.monotonic()
                if not await self._forget_older():
                    swept -= _MEMORY_SWEEP_S - _MEMORY_SWEEP_RETRY_S
            if not entries:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def _forget_older(self) -> bool:
        """The inbox's memory sweep; failing, it is tried again a minute later (the inbox
        reports itself stuck meanwhile: the same writes fail for postbacks)."""
        try:
            forgotten = await self._inbox.forget_older()
        except Exception as exc:
            log.warning(
                "inbox memory sweep failed (%s: %s); trying again in %.0f s",
                type(exc).__name__,
                exc,
                _MEMORY_SWEEP_RETRY_S,
            )
            return False
        log.info("inbox forgot %d accepted conversions past its memory", forgotten)
        return True

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
                    self._faults.clear(entry.conversion_id)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Temporal down or refusing: the entry stays in the inbox and is retried.
                self._faults.fail(
                    entry.conversion_id,
                    f"cannot start {entry.conversion_id} ({type(exc).__name__}: {exc}); "
                    f"retrying (attempt {failures + 1})",
                    exc,
                )
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
        """Remove forwarded entries in groups: one inbox commit for many starts. A failed
        removal keeps the group (and what was started meanwhile) and retries with backoff."""
        failures = 0
        while True:
            if not failures:
                await self._done_flush.wait()
            self._done_flush.clear()
            done = self._done[:]
            if not done:  # removed on the way out of an earlier run
                if failures:
                    failures = 0
                    self._faults.clear("remove")
                continue
            try:
                await self._inbox.forwarded(done)
            except Exception as exc:
                failures += 1
                self._faults.fail(
                    "remove",
                    f"cannot remove {len(self._done)} forwarded postbacks from the inbox "
                    f"({type(exc).__name__}: {exc}); retrying (attempt {failures})",
                    exc,
                )
                await asyncio.sleep(backoff(failures))
                continue
            del self._done[: len(done)]  # what was started meanwhile waits for the next
            if failures:
                failures = 0
                self._faults.clear("remove")
