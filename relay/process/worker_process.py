"""`relay worker` as a process: it runs until SIGINT/SIGTERM, then drains in-flight
activities, or until its Temporal worker fails fatally, then exits non-zero saying why.
While the worker polls and the Temporal frontend answers, it touches a health file
(`python -m relay.process.health` reads it)."""

import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from relay.core.settings import Settings

log = logging.getLogger(__name__)


class WorkerFailed(RuntimeError):
    """The Temporal worker stopped without being asked to."""


async def serve_worker(worker: Worker, client: Client, settings: Settings) -> None:
    """Run `worker` until a signal (drain, return) or its failure (raise WorkerFailed)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    health = settings.worker_health_path
    running = asyncio.create_task(worker.run(), name="temporal-worker")
    beating = asyncio.create_task(_beat(worker, client, health, settings.worker_heartbeat_s))
    asked = asyncio.create_task(stop.wait())
    log.info("worker polling task queue %s", settings.task_queue)
    try:
        await asyncio.wait({running, asked}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        beating.cancel()
        asked.cancel()
        await asyncio.gather(beating, asked, return_exceptions=True)
        health.unlink(missing_ok=True)
    if running.done():
        raise WorkerFailed(_why(running))
    log.info(
        "stopping: in-flight activities get up to %.0f s to finish", settings.worker_shutdown_grace
    )
    await worker.shutdown()
    await asyncio.gather(running, return_exceptions=True)


def _why(task: "asyncio.Task[None]") -> str:
    if task.cancelled():
        return "the Temporal worker was cancelled"
    error = task.exception()
    if error is None:
        return "the Temporal worker stopped on its own"
    cause = f"{error}; caused by: {error.__cause__}" if error.__cause__ else str(error)
    return f"the Temporal worker failed: {cause}"


async def _beat(worker: Worker, client: Client, path: Path, every_s: float) -> None:
    """Touch `path` every `every_s` while the worker runs and its frontend answers."""
    while True:
        try:
            healthy = worker.is_running and await client.service_client.check_health(
                timeout=timedelta(seconds=every_s)
            )
        except Exception as exc:  # any failure means not healthy now
            log.warning("Temporal health check failed: %s", exc)
            healthy = False
        if healthy:
            _touch(path)
        await asyncio.sleep(every_s)


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
