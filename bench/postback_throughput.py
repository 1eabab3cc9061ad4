"""Postback throughput of Relay on real local services, as ratios measured side by side.

Run from the repository root: `.venv/bin/python -m bench.postback_throughput [--count N]`.
See bench/README.md for what each figure means.
"""

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.store.database import apply_migrations, open_clickhouse
from relay.temporal.payload_codec import relay_data_converter
from tests.harness import Relay, running_relay
from tests.platform_server import PlatformServer

CONCURRENCY = 20
WARMUP = 10
T = TypeVar("T")


@dataclass
class Scenario:
    name: str
    count: int
    seconds: float  # wall time of the timed part
    cpu: float  # CPU seconds this process used meanwhile (all its threads)
    latencies: list[float] = field(default_factory=list)  # seconds per postback

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    def percentile(self, p: int) -> float:
        """The p-th percentile in milliseconds (nearest rank)."""
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(0, round(p / 100 * len(ordered)) - 1)]


@dataclass
class Bench:
    relay: Relay
    key: str
    campaign_id: str  # the campaign the postbacks' clicks belong to

    async def fresh_postbacks(self, count: int) -> list[dict[str, str]]:
        """Postback parameters on new clicks, each with its own txid (setup, not timed)."""
        calls = [lambda: self.relay.click(self.campaign_id) for _ in range(count)]
        clicks = await gather_limited(calls, CONCURRENCY)
        return [
            {"key": self.key, "click_id": c, "payout": "12.50", "txid": uuid.uuid4().hex[:12]}
            for c in clicks
        ]

    async def send(self, params: dict[str, str], expected: str) -> tuple[str, float]:
        """One postback: (conversion ID, seconds until the answer). Fails on a wrong answer."""
        started = time.perf_counter()
        response = await self.relay.postback(**params)
        elapsed = time.perf_counter() - started
        body = response.json()
        if response.status_code != 200 or body.get("status") != expected:
            raise RuntimeError(f"expected {expected!r}, got {response.status_code} {body}")
        return str(body["conversion_id"]), elapsed

    async def fired(self, conversion_id: str) -> int:
        """Wait for the workflow to complete; return how many pixels it delivered to."""
        result = await self.relay.result(conversion_id)
        return sum(fire.delivered for fire in result.fires)

    async def accept(
        self, name: str, postbacks: list[dict[str, str]], concurrency: int, expected: str
    ) -> Scenario:
        """Timed postbacks, then (untimed) every workflow finished, so the next scenario
        starts on an idle worker."""
        calls = [partial(self.send, params, expected) for params in postbacks]
        started, cpu = time.perf_counter(), time.process_time()
        answers = await gather_limited(calls, concurrency)
        scenario = Scenario(name, len(postbacks), *since(started, cpu))
        scenario.latencies = [seconds for _, seconds in answers]
        await gather_limited([partial(self.fired, c) for c, _ in answers], 50)
        return scenario

    async def end_to_end(self, name: str, postbacks: list[dict[str, str]]) -> tuple[Scenario, int]:
        """From the first postback until every workflow completed; and how many conversions
        reached both pixels."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(params: dict[str, str]) -> int:
            async with gate:
                conversion_id, _ = await self.send(params, "accepted")
            return await self.fired(conversion_id)

        started, cpu = time.perf_counter(), time.process_time()
        fired = await asyncio.gather(*(one(params) for params in postbacks))
        scenario = Scenario(name, len(postbacks), *since(started, cpu))
        return scenario, sum(n == 2 for n in fired)


async def gather_limited(calls: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run the calls with at most `limit` in flight; results in call order."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(call) for call in calls))


def since(wall: float, cpu: float) -> tuple[float, float]:
    """Wall and process CPU seconds elapsed since the given readings."""
    return time.perf_counter() - wall, time.process_time() - cpu


STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:5.1f}s] {message}", flush=True)


async def run(count: int, deadline_s: float) -> None:
    temporal = Path(sys.executable).parent / "temporal"
    if not temporal.exists():
        sys.exit(f"{temporal} is missing (pip install -e '.[test]'); nothing is downloaded")
    print(f"cores: {os.cpu_count()}  Python {platform.python_version()}  ", end="")
    print(f"temporalio {version('temporalio')}  chdb {version('chdb')}  N={count}\n")
    progress("starting the Temporal dev server, ClickHouse (chdb) and the platform stand-in")
    keys = KeyRing.parse(KeyRing.generate_spec("bench"))
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal),
        data_converter=relay_data_converter(keys),  # payloads encrypted, as Relay runs
        dev_server_log_level="error",
    )
    try:
        with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp, PlatformServer() as fake:
            clickhouse = open_clickhouse(f"chdb://{tmp}", "relay_bench")
            # The same engine behind one client, as before the pool: scenario 5.
            single = open_clickhouse(f"chdb://{tmp}", "relay_bench", pool_size=1)
            apply_migrations(clickhouse)
            try:
                async with (
                    running_relay(env, clickhouse, fake, keys) as relay,
                    running_relay(env, single, fake, keys) as single_relay,
                ):
                    async with asyncio.timeout(deadline_s):
                        await measure(relay, single_relay, count)
            finally:
                clickhouse.close()
                single.close()
    finally:
        await env.shutdown()


async def measure(relay: Relay, single_relay: Relay, count: int) -> None:
    key = (await relay.network())["postback_key"]
    # Scenarios 1-3 measure accepting: a campaign without pixels keeps the worker's share of
    # the two cores small. Scenario 4 delivers to one Meta and one TikTok pixel.
    plain = Bench(relay, key, (await relay.campaign())["id"])
    delivering = Bench(relay, key, (await relay.campaign())["id"])
    await relay.pixel(delivering.campaign_id, "meta")
    await relay.pixel(delivering.campaign_id, "tiktok")
    progress(f"warm-up: {WARMUP} postbacks")
    await plain.accept("warm-up", await plain.fresh_postbacks(WARMUP), 1, "accepted")
    progress("1/5 new conversions, sequential")
    postbacks = await plain.fresh_postbacks(count)
    sequential = await plain.accept("new, sequential", postbacks, 1, "accepted")
    progress(f"2/5 new conversions, concurrency {CONCURRENCY}")
    postbacks = await plain.fresh_postbacks(count)
    concurrent = await plain.accept(
        f"new, concurrency {CONCURRENCY}", postbacks, CONCURRENCY, "accepted"
    )
    # Resends cannot be on fresh clicks: they repeat scenario 2's postbacks, all accepted and
    # finished by now (the same state a separately accepted set would be in, at half the cost).
    progress("3/5 resends of scenario 2's postbacks, sequential")
    resends = await plain.accept("resend (existing), sequential", postbacks, 1, "existing")
    progress(f"4/5 end to end, concurrency {CONCURRENCY}, Meta + TikTok pixel")
    postbacks = await delivering.fresh_postbacks(count)
    e2e, delivered = await delivering.end_to_end(
        f"end to end, concurrency {CONCURRENCY}", postbacks
    )
    progress(f"5/5 end to end as 4/5, one ClickHouse client instead of {relay.pool_size}")
    single = Bench(single_relay, key, (await single_relay.campaign())["id"])
    await single_relay.pixel(single.campaign_id, "meta")
    await single_relay.pixel(single.campaign_id, "tiktok")
    postbacks = await single.fresh_postbacks(count)
    e2e_single, delivered_single = await single.end_to_end("end to end, 1 CH client", postbacks)
    report([sequential, concurrent, resends], e2e, delivered + delivered_single, e2e_single)


def report(accepts: list[Scenario], e2e: Scenario, delivered: int, e2e_single: Scenario) -> None:
    sequential, concurrent, resends = accepts
    print(f"\n{'scenario':<32}{'p50 ms':>8}{'p95 ms':>8}{'per s':>8}{'wall s':>8}{'cpu %':>7}")
    for s in [*accepts, e2e, e2e_single]:
        if s.latencies:
            print(f"{s.name:<32}{s.percentile(50):>8.1f}{s.percentile(95):>8.1f}", end="")
        else:
            print(f"{s.name:<32}{'-':>8}{'-':>8}", end="")
        print(f"{s.per_second:>8.1f}{s.seconds:>8.2f}{100 * s.cpu / s.seconds:>7.0f}")
    total = e2e.count + e2e_single.count
    print(f"  (end to end: {delivered}/{total} conversions delivered to both pixels)\n")
    print("ratios (same run):")
    ratio = concurrent.per_second / sequential.per_second
    print(f"  concurrent / sequential accepted/s      {ratio:6.2f}x")
    ratio = resends.percentile(50) / sequential.percentile(50)
    print(f"  resend / new p50 accept latency         {ratio:6.2f}x")
    ratio = e2e.per_second / concurrent.per_second
    print(f"  end-to-end delivered/s / accepted/s     {ratio:6.2f}x  (both at concurrency 20)")
    ratio = e2e.per_second / e2e_single.per_second
    print(f"  delivered/s, client pool / one client   {ratio:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200, help="postbacks per scenario")
    parser.add_argument("--deadline", type=float, default=300, help="give up after (seconds)")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    try:
        asyncio.run(run(args.count, args.deadline))
    except TimeoutError:
        sys.exit(f"gave up: over --deadline {args.deadline:g} s, or a workflow over 60 s")


if __name__ == "__main__":
    main()
