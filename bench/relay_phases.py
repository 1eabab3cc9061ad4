"""The four measurements of `bench.relay_up`, each on a fresh `relay up` (own data dir and
ports), so one phase's backlog or memory never leaks into the next one's figures."""

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import http_load
from bench.http_load import Burst
from bench.procs import Children, signal_pid
from bench.reference import Reference, run_reference
from bench.relay_instance import Campaign, RelayUp
from bench.wrk_load import WrkResult, run_wrk, write_script
from tests.embedded import free_port

CONCURRENCY = 20
WARMUP = 10


@dataclass
class Options:
    count: int
    burst: int
    outage_burst: int
    outage_s: float
    burst_concurrency: int
    timeout_s: float
    click_pool: int
    wrk_seconds: int


@dataclass
class Context:
    children: Children
    workdir: Path
    platforms_url: str
    options: Options
    give_up_at: float  # time.monotonic() of --deadline
    progress: Callable[[str], None]
    relay_temporal_command: str = ""


@asynccontextmanager
async def relay_up(ctx: Context, name: str) -> AsyncIterator[RelayUp]:
    relay = RelayUp(ctx.children, ctx.workdir / f"relay-{name}", ctx.platforms_url)
    ctx.progress(f"  starting relay up ({relay.data_dir})")
    try:
        await relay.start()
        ctx.relay_temporal_command = relay.temporal_command()
        yield relay
    finally:
        await relay.stop()


async def fresh_targets(ctx: Context, relay: RelayUp, campaign: Campaign, n: int) -> list[str]:
    """`n` postbacks, each on a new click of the campaign with its own txid (untimed)."""
    ctx.progress(f"  creating {n} clicks (untimed)")
    clicks = await http_load.clicks(relay.port, campaign.id, n)
    return [campaign.postback(click, uuid.uuid4().hex[:16]) for click in clicks]


@dataclass
class EndToEnd:
    reference: Reference
    count: int
    seconds: float | None  # first postback until both pixels were seen delivered; None: not
    delivered: int  # conversions delivered to both pixels (min of the two counts)
    answers: Burst
    extra_rows: int = 0  # success rows beyond one per conversion and pixel (at the end)

    @property
    def per_second(self) -> float | None:
        return self.count / self.seconds if self.seconds else None


async def end_to_end(ctx: Context) -> EndToEnd:
    n = ctx.options.count
    ctx.progress("(a) reference: same-shape workflow on its own dev server")
    reference = await run_reference(
        ctx.children, ctx.workdir / "reference", n, CONCURRENCY, WARMUP, ctx.progress
    )
    ctx.progress(f"  reference: {reference.per_second:.1f} workflows/s")
    ctx.progress(f"(a) relay up: {n} postbacks, {CONCURRENCY} in flight, Meta + TikTok pixel")
    async with relay_up(ctx, "a") as relay:
        warm = await relay.campaign()
        targets = await fresh_targets(ctx, relay, warm, WARMUP)
        ctx.progress(f"  warm-up: {WARMUP} postbacks, until delivered")
        await http_load.burst(
            relay.port, targets, CONCURRENCY, ctx.options.timeout_s, ctx.give_up_at
        )
        await relay.wait_delivered(warm.id, WARMUP, ctx.give_up_at, 0.5, ctx.progress)
        campaign = await relay.campaign()
        targets = await fresh_targets(ctx, relay, campaign, n)
        ctx.progress("  timed: postbacks until every conversion is delivered to both pixels")
        # Timed by the platform stand-in's arrival times, as the reference is timed by its
        # client: polling Relay's own API while it works would cost it CPU (about 8%).
        before = await relay.platform_events()
        started = time.time()
        answers = await http_load.burst(
            relay.port, targets, CONCURRENCY, ctx.options.timeout_s, ctx.give_up_at
        )
        arrived = await relay.wait_platforms(before, n, ctx.give_up_at)
        # Untimed: Relay logged every delivery (each success row, per pixel).
        _, delivered = await relay.wait_delivered(campaign.id, n, ctx.give_up_at, 1.0, ctx.progress)
        extra = await extra_rows(relay, campaign, n)
    seconds = arrived - started if arrived and delivered >= n else None
    return EndToEnd(reference, n, seconds, delivered, answers, extra)


async def extra_rows(relay: RelayUp, campaign: Campaign, expected: int) -> int:
    """Successful pixel-log rows beyond `expected` per platform, read once more at the end:
    a conversion sent twice to a pixel (the platforms deduplicate by event_id)."""
    try:
        meta, tiktok = await relay.delivered(campaign.id)
    except httpx.HTTPError:
        return -1  # shown as n/a
    return max(0, meta - expected) + max(0, tiktok - expected)


@dataclass
class Ingest:
    relay: WrkResult
    bare: WrkResult


async def ingest(ctx: Context) -> Ingest:
    seconds = ctx.options.wrk_seconds
    ctx.progress(f"(b) bare FastAPI endpoint under wrk ({seconds} s)")
    port = free_port()
    bare = ctx.children.spawn(
        [sys.executable, "-m", "bench.bare_app", "--port", str(port)],
        ctx.workdir / "bare-app.log",
    )
    try:
        await _wait_http(port, 30)
        script = write_script(ctx.workdir / "bare.lua", Campaign("c", "bare"), ["x"])
        bare_result = await run_wrk(
            f"http://127.0.0.1:{port}", script, seconds, ctx.workdir / "wrk-bare.txt"
        )
    finally:
        ctx.children.stop(bare)
    ctx.progress(f"  bare: {bare_result.accepted_per_s:.0f}/s, p99 {bare_result.p99_ms:.1f} ms")
    ctx.progress(f"(b) relay up under wrk ({seconds} s), {ctx.options.click_pool} real clicks")
    async with relay_up(ctx, "b") as relay:
        campaign = await relay.campaign()
        ctx.progress(f"  creating {ctx.options.click_pool} clicks (untimed)")
        clicks = await http_load.clicks(relay.port, campaign.id, ctx.options.click_pool)
        script = write_script(ctx.workdir / "relay.lua", campaign, clicks)
        relay_result = await run_wrk(relay.url, script, seconds, ctx.workdir / "wrk-relay.txt")
    ctx.progress(f"  relay: {relay_result.accepted_per_s:.0f}/s, p99 {relay_result.p99_ms:.1f} ms")
    return Ingest(relay_result, bare_result)


@dataclass
class BurstRun:
    burst: Burst
    deliver_seconds: float | None  # first postback until all answered ones were delivered
    delivered: int
    relay_rss_mb: float | None
    temporal_rss_mb: float | None
    extra_rows: int = 0  # success rows beyond one per conversion and pixel (at the end)
    outage_at_s: float | None = None  # seconds after the first postback (None: no outage)
    outage_s: float = 0.0
    after_resume_s: float | None = None  # SIGCONT until all delivered

    @property
    def lost(self) -> int:
        return max(0, len(self.burst.conversion_ids) - self.delivered)


async def burst(ctx: Context, name: str, n: int, outage_s: float | None) -> BurstRun:
    """A burst of `n` new postbacks. With `outage_s`: the first half, then the relay's dev
    server is SIGSTOPped for `outage_s` while the second half is sent, then SIGCONT."""
    what = f", Temporal stopped {outage_s:g} s in the middle" if outage_s is not None else ""
    ctx.progress(f"({name}) relay up: burst of {n} new postbacks{what}")
    async with relay_up(ctx, name) as relay:
        campaign = await relay.campaign()
        targets = await fresh_targets(ctx, relay, campaign, n)
        halves = [targets[: n // 2], targets[n // 2 :]] if outage_s is not None else [targets]
        result = Burst(0)
        last = [time.monotonic()]

        def on_answer(result: Burst) -> None:
            if time.monotonic() - last[0] >= 5:
                last[0] = time.monotonic()
                ctx.progress(
                    f"  answered {result.answered}/{n}, resent 503 "
                    f"{result.resent_503}, timeouts {result.resent_timeout}"
                )

        started = time.monotonic()
        outage_times: list[float] = []  # SIGSTOP, SIGCONT (monotonic)
        outage: asyncio.Task[None] | None = None
        concurrency = ctx.options.burst_concurrency
        ctx.progress(f"  burst: {n} postbacks, {concurrency} in flight")
        try:
            for number, half in enumerate(halves):
                if number == 1 and outage_s is not None:
                    pid = relay.find_temporal()
                    ctx.progress(f"  SIGSTOP temporal dev server (pid {pid}) for {outage_s:g} s")
                    signal_pid(pid, signal.SIGSTOP)
                    outage_times.append(time.monotonic())
                    outage = asyncio.create_task(_resume(ctx, pid, outage_s, outage_times))
                await http_load.burst(
                    relay.port,
                    half,
                    concurrency,
                    ctx.options.timeout_s,
                    ctx.give_up_at,
                    on_answer,
                    result,
                )
            result.seconds = time.monotonic() - started
            ctx.progress(
                f"  all answered or given up after {result.seconds:.1f} s; waiting for delivery"
            )
            if result.slow:
                opened = sum(connect is not None for _, connect in result.slow)
                worst_connect = max((c for _, c in result.slow if c is not None), default=0.0)
                ctx.progress(
                    f"  {len(result.slow)} answers over 1 s: {opened} on a new connection "
                    f"(slowest connect {worst_connect:.2f} s)"
                )
            seen, delivered = await relay.wait_delivered(
                campaign.id, len(result.conversion_ids), ctx.give_up_at, 1.0, ctx.progress
            )
            if outage:
                await outage  # the outage runs its full length even if delivery was done
        finally:
            if outage:
                outage.cancel()
                await asyncio.gather(outage, return_exceptions=True)
            if relay.temporal_pid:
                signal_pid(relay.temporal_pid, signal.SIGCONT)
        relay_rss, temporal_rss = relay.peak_rss_mb()
        extra = await extra_rows(relay, campaign, len(result.conversion_ids))
    run = BurstRun(result, seen - started if seen else None, delivered, relay_rss, temporal_rss)
    run.extra_rows = extra
    if outage_times:
        run.outage_at_s, run.outage_s = outage_times[0] - started, outage_s or 0.0
        if seen and len(outage_times) == 2:
            run.after_resume_s = seen - outage_times[1]
    return run


async def _resume(ctx: Context, pid: int, seconds: float, times: list[float]) -> None:
    """SIGCONT the stopped dev server after `seconds` (also when cancelled)."""
    try:
        await asyncio.sleep(seconds)
    finally:
        signal_pid(pid, signal.SIGCONT)
        times.append(time.monotonic())
        ctx.progress("  SIGCONT temporal dev server")


async def _wait_http(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        conn = http_load.Connection(port)
        try:
            await conn.get("/postback", 2)
            conn.close()
            return
        except (OSError, TimeoutError, ValueError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
