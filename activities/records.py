"""Attempt rows written from the workflow: a delivered send whose row could not be stored
in time returns it (activities.attempts.log_attempt), and the workflow records it here,
retried until the store takes it, never by sending again."""

import asyncio

from temporalio import activity

from activities.attempts import store_submit
from relay.domain.models import PixelFire, PostbackAttempt, PostbackAttemptRow
from relay.store.attempt_log import AttemptLog


class RecordActivities:
    def __init__(
        self, fire_log: AttemptLog[PixelFire], postback_log: AttemptLog[PostbackAttempt]
    ) -> None:
        self._fire_log = fire_log
        self._postback_log = postback_log

    @activity.defn
    async def record_pixel_fire(self, row: PixelFire) -> None:
        """Store the row unless it is stored already (the late write of its own attempt
        may have landed meanwhile)."""
        if not await asyncio.to_thread(self._fire_log.has, row):
            await store_submit(lambda: self._fire_log.submit(row))

    @activity.defn
    async def record_postback_attempt(self, row: PostbackAttemptRow) -> None:
        """As record_pixel_fire, for an outbound postback's attempt."""
        if not await asyncio.to_thread(self._postback_log.has, row):
            await store_submit(lambda: self._postback_log.submit(row))
