"""How Relay grows (issue 9 item 7): end-to-end delivered/s with one `relay worker` against
two, side by side in one run, on the same shared Temporal and ClickHouse over HTTP.

Run from the repository root: `.venv/bin/python -m bench.scale_out [--count N]`.
See bench/README.md ("scale_out.py") for the setup and how to read the figures.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench import http_load
from bench.procs import Children, venv_binary, wait_port
from bench.relay_instance import ADMIN_TOKEN, BENCH_PIXELS, Campaign, RelayUp
from relay.core.crypto import KeyRing
from relay.temporal.search_attributes import dev_server_flags
from tests.distributed import Cluster, Role
from tests.embedded import free_port

STARTED = time.monotonic()
CH_USER, CH_PASSWORD = "relay", "bench-" + uuid.uuid4().hex[:12]


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


@dataclass
class Scenario:
    workers: int
    count: int
    seconds: float | None  # first postback until the last event reached the stand-in

    @property
    def per_second(self) -> float | None:
        return self.count / self.seconds if self.seconds else None


class Api(RelayUp):
    """Bench calls (campaign, stand-in counts, reading API) on a running `relay api`."""

    def __init__(self, children: Children, role: Role, platforms_url: str) -> None:
        super().__init__(children, role.data_dir, platforms_url)
        self.port, self.url = role.port, role.url
        self.http.base_url = role.url


def shared_services(children: Children, workdir: Path) -> tuple[str, str, str]:
    """The Temporal dev server (SQLite, WAL), the ClickHouse HTTP server and the platform
    stand-in, each its own process: (Temporal address, ClickHouse DSN, platforms URL)."""
    port, ch_port, platforms_port = free_port(), free_port(), free_port()
    temporal = [str(venv_binary("temporal")), "server", "start-dev", "--headless"]
    temporal += ["--db-filename", str(workdir / "temporal.sqlite")]
    temporal += ["--sqlite-pragma", "journal_mode=wal", "--ip", "127.0.0.1"]
    temporal += ["--port", str(port), "--ui-port", str(free_port()), "--log-level", "warn"]
    children.spawn([*temporal, *dev_server_flags()], workdir / "temporal.log")
    clickhouse = [sys.executable, "-m", "tests.clickhouse_http", "--port", str(ch_port)]
    clickhouse += ["--data-dir", str(workdir / "clickhouse")]
    clickhouse += ["--user", CH_USER, "--password", CH_PASSWORD]
    children.spawn(clickhouse, workdir / "clickhouse.log")
    stand_in = [sys.executable, "-m", "tests.platform_server", "--port", str(platforms_port)]
    for pixel, token in BENCH_PIXELS.values():
        stand_in += ["--token", f"{pixel}={token}"]
    children.spawn(stand_in, workdir / "platforms.log")
    dsn = f"http://{CH_USER}:{CH_PASSWORD}@127.0.0.1:{ch_port}"
    return f"127.0.0.1:{port}", dsn, f"http://127.0.0.1:{platforms_port}"


async def scenario(
    children: Children,
    workdir: Path,
    shared: tuple[str, str, str],
    workers: int,
    args: argparse.Namespace,
) -> Scenario:
    """Two APIs and `workers` workers on a fresh database and task queue of the shared
    services; `count` postbacks (new clicks, `concurrency` in flight over both APIs)."""
    address, dsn, platforms_url = shared
    tag = f"w{workers}"
    cluster = Cluster(
        address,
        dsn,
        f"bench_{tag}_{uuid.uuid4().hex[:6]}",
        f"bench-{tag}-{uuid.uuid4().hex[:6]}",
        KeyRing.generate_spec("bench"),
        ADMIN_TOKEN,
        {"RELAY_META_BASE_URL": platforms_url, "RELAY_TIKTOK_BASE_URL": platforms_url},
    )
    await asyncio.to_thread(cluster.migrate, workdir / tag / "migrate")
    roles = [Role("api", cluster, workdir / tag / f"api{i}") for i in (1, 2)]
    roles += [Role("worker", cluster, workdir / tag / f"worker{i}") for i in range(1, workers + 1)]
    try:
        for role in roles:
            role.start()
        for role in roles:
            await asyncio.to_thread(role.wait_ready)
        apis = [Api(children, role, platforms_url) for role in roles[:2]]
        give_up_at = time.monotonic() + args.deadline
        made = await campaign(apis)
        progress(f"{workers} worker(s): warm-up, {args.warmup} postbacks until delivered")
        await deliver(apis, made, args.warmup, args, give_up_at)
        progress(
            f"{workers} worker(s): timed, {args.count} postbacks, {args.concurrency} in flight"
        )
        seconds = await deliver(apis, made, args.count, args, give_up_at)
        for api in apis:
            await api.http.aclose()
        return Scenario(workers, args.count, seconds)
    finally:
        for role in roles:
            role.stop()


async def campaign(apis: list[Api]) -> Campaign:
    """A campaign made through API 1, once API 2 knows it too: another process's change is
    seen within `RELAY_CONFIG_REFRESH_S`, and a postback for a network not seen yet, within a
    second of the last check, is refused (401) rather than reload the cache for every bad key."""
    made = await apis[0].campaign()
    await apis[1]._until_visible(made.id)
    return made


async def deliver(
    apis: list[Api], campaign: Campaign, n: int, args: argparse.Namespace, give_up_at: float
) -> float | None:
    """`n` postbacks on new clicks, half through each API; the seconds from the first until
    the last event reached the stand-in on both pixels (None if not all did)."""
    clicks = await http_load.clicks(apis[0].port, campaign.id, n)
    targets = [campaign.postback(click, uuid.uuid4().hex[:16]) for click in clicks]
    before = await apis[0].platform_events()
    started = time.time()
    half = args.concurrency // 2
    bursts = await asyncio.gather(
        *(
            http_load.burst(api.port, targets[i::2], half, 30, give_up_at)
            for i, api in enumerate(apis)
        )
    )
    for api, burst in zip(apis, bursts, strict=True):
        if burst.failed:
            progress(f"  {api.url}: {burst.failed} postbacks refused: {dict(burst.statuses)}")
    arrived = await apis[0].wait_platforms(before, n, give_up_at)
    return arrived - started if arrived else None


def report(results: list[Scenario]) -> None:
    print("\nworkers  postbacks  seconds  delivered/s")
    for r in results:
        rate = f"{r.per_second:11.1f}" if r.per_second else "        n/a"
        seconds = f"{r.seconds:7.1f}" if r.seconds else "    n/a"
        print(f"{r.workers:7}  {r.count:9}  {seconds}  {rate}")
    one, two = (r.per_second for r in results)
    ratio = f"{two / one:.2f}x" if one and two else "n/a"
    print(f"\ndelivered/s, two workers / one worker: {ratio}")
    loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"cores {os.cpu_count()}, load average now {loadavg}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="timed postbacks per scenario")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20, help="postbacks in flight")
    parser.add_argument("--deadline", type=float, default=600, help="seconds per scenario")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="relay-scale-out-"))
    children = Children()
    try:
        shared = shared_services(children, workdir)
        for address in (shared[0], shared[1].rsplit("@", 1)[1], shared[2].removeprefix("http://")):
            await wait_port(int(address.rsplit(":", 1)[1]), 60)
        progress(f"shared Temporal {shared[0]}, ClickHouse over HTTP, work dir {workdir}")
        results = [await scenario(children, workdir, shared, n, args) for n in (1, 2)]
    finally:
        children.close()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    report(results)
    return 0 if all(r.seconds for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
