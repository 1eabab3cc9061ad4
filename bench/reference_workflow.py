"""The reference workflow of `bench.relay_up` (a): Relay's shape without Relay's work.

A no-op "persist" activity, then two "send_event" activities in parallel (Meta and TikTok),
each a regular activity that POSTs to a local HTTP sink. Kept in its own module with nothing
but temporalio imported, so the default sandbox re-imports as little as a naive user's
workflow file would.
"""

import asyncio
from datetime import timedelta

from temporalio import workflow

TIMEOUT = timedelta(seconds=30)


@workflow.defn
class ReferenceWorkflow:
    @workflow.run
    async def run(self, conversion_id: str) -> int:
        await workflow.execute_activity(
            "persist", conversion_id, start_to_close_timeout=TIMEOUT, result_type=type(None)
        )
        sends = [
            workflow.execute_activity(
                "send_event",
                args=[conversion_id, platform],
                start_to_close_timeout=TIMEOUT,
                result_type=int,
            )
            for platform in ("meta", "tiktok")
        ]
        return sum(await asyncio.gather(*sends))
