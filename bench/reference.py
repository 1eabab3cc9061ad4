"""(a)'s reference: the same-shape workflow on its own dev server, naive worker settings.

The dev server is `temporal server start-dev --db-filename FILE --sqlite-pragma
journal_mode=wal` from the venv (nothing is downloaded); the worker runs in the bench process
with the SDK's defaults (sandboxed workflow, regular async activities).
"""

import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench.procs import Children, venv_binary, wait_port
from bench.reference_workflow import ReferenceWorkflow
from tests.embedded import free_port

TASK_QUEUE = "bench-reference"


class Activities:
    def __init__(self, sink_url: str, http: httpx.AsyncClient) -> None:
        self.sink_url = sink_url
        self.http = http

    @activity.defn(name="persist")
    async def persist(self, conversion_id: str) -> None:
        """No-op: the reference pays Temporal's cost of the step, not Relay's work."""

    @activity.defn(name="send_event")
    async def send_event(self, conversion_id: str, platform: str) -> int:
        body = {"event_id": conversion_id, "platform": platform, "event_name": "Purchase"}
        response = await self.http.post(f"{self.sink_url}/{platform}", json=body)
        response.raise_for_status()
        return 1


@dataclass
class Reference:
    count: int
    seconds: float
    delivered: int  # workflows whose two sends both succeeded
    command: str  # the dev server's arguments

    @property
    def per_second(self) -> float:
        return self.count / self.seconds


async def run_reference(
    children: Children,
    workdir: Path,
    count: int,
    concurrency: int,
    warmup: int,
    progress: Callable[[str], None],
) -> Reference:
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    port, ui_port, sink_port = free_port(), free_port(), free_port()
    args = [
        *("server", "start-dev", "--db-filename", str(workdir / "temporal.sqlite")),
        *("--sqlite-pragma", "journal_mode=wal", "--ip", "127.0.0.1"),
        *("--port", str(port), "--ui-port", str(ui_port), "--log-level", "warn"),
    ]
    server = children.spawn([str(venv_binary("temporal")), *args], workdir / "temporal.log")
    sink = children.spawn(
        [sys.executable, "-m", "bench.sink", "--port", str(sink_port)], workdir / "sink.log"
    )
    try:
        await wait_port(sink_port, 30)
        client = await _connect(f"127.0.0.1:{port}", 60)
        async with httpx.AsyncClient(timeout=10) as http:
            activities = Activities(f"http://127.0.0.1:{sink_port}", http)
            async with Worker(
                client,
                task_queue=TASK_QUEUE,
                workflows=[ReferenceWorkflow],
                activities=[activities.persist, activities.send_event],
            ):
                gate = asyncio.Semaphore(concurrency)

                async def one() -> int:
                    async with gate:
                        return await client.execute_workflow(
                            ReferenceWorkflow.run,
                            f"ref_{uuid.uuid4().hex}",
                            id=f"ref_{uuid.uuid4().hex}",
                            task_queue=TASK_QUEUE,
                        )

                progress(f"  reference warm-up: {warmup} workflows")
                await asyncio.gather(*(one() for _ in range(warmup)))
                progress(f"  reference: {count} workflows, {concurrency} in flight")
                started = time.perf_counter()
                sent = await asyncio.gather(*(one() for _ in range(count)))
                seconds = time.perf_counter() - started
        return Reference(count, seconds, sum(n == 2 for n in sent), " ".join(args))
    finally:
        children.stop(sink)
        children.stop(server)


async def _connect(address: str, timeout_s: float) -> Client:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client = await Client.connect(address)
            await client.service_client.check_health()
            return client
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.25)
