"""What fsyncing ClickHouse parts costs on Relay's insert path, in-process (chdb).

    .venv/bin/python -m bench.chdb_fsync                    # 5 rounds x 60 inserts per shape
    .venv/bin/python -m bench.chdb_fsync --rounds 3 --inserts 30
    strace -f -c -e trace=fsync,fdatasync .venv/bin/python -m bench.chdb_fsync --mode on

ClickHouse writes each insert as a new part (a directory of small files) and, by default
(`fsync_after_insert=0`, `fsync_part_directory=0`), returns before any of it reaches the
disk: the part sits in the page cache until the kernel writes it back (ext4: within about
5-30 s). A process crash loses nothing (the kernel still has the pages); an OS crash or a
power cut in that window loses the newest parts, whatever the caller was told. The two
MergeTree settings make the insert fsync every file of the part and the directories it is
renamed into before it returns; `min_rows_to_fsync_after_merge = 1` does the same for the
part a merge writes (chdb removes a merge's source parts at once, `old_parts_lifetime = 0`,
so an unsynced merged part would lose rows that had been fsynced). Merges run in the
background: they cost no insert its latency, only disk time, which shows here as noise.

What is measured: a fresh in-process engine in a temporary directory with Relay's migrations
applied, and inserts shaped as Relay makes them: rows as `TrafficStore.submit_conversion` and
`AttemptLog.submit` build them, inserted through `ClickHouse.insert`, the call the batcher
(relay/store/batcher.py) makes for each batch. Shapes: one row (a quiet moment, or a click,
which never lingers) and 50 rows (a busy batcher), into `clicks` and `conversions`
(ReplacingMergeTree, no partition) and `pixel_fires` (MergeTree, monthly partitions). Modes:
`off` (the default) and `on` (the three settings set on the table by `ALTER TABLE ...
MODIFY SETTING`, as migration 0010 does). Rounds alternate the modes, so drift of the
machine (merges, page cache, other load) hits both.

Reading the output: per shape and mode, the p50 and p95 latency of one insert call and the
rows/s of back-to-back inserts (one writer, as one table's batcher is). The `cost` column is
the p50 added by fsync. Then `fsync probe`: this disk's own cost of a 4 KiB write + fsync
(measured in every round, the median shown), the unit of the added cost. An insert with the
settings makes 15-16 fdatasync calls (one per file of the part, the part's directory before
and after its rename, the table's directory; strace as above, `--mode on` against `--mode
off`, which makes none), spread over ClickHouse's threads, so the cost grows with the disk's
fsync time: on a disk whose fsync costs ten times the probe's, expect about ten times the
cost. Other fsync-heavy work on the machine inflates both. Figures from one machine are
noisy (about 15% between runs): read the ratios.
"""

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from relay.store.database import apply_migrations, open_clickhouse
from relay.store.pool import ClickHouse

# As migration 0010 sets them: the insert's part, its directories, and merged parts.
FSYNC_SETTINGS = ("fsync_after_insert", "fsync_part_directory", "min_rows_to_fsync_after_merge")
Row = dict[str, Any]


def conversion_row(n: int) -> Row:
    """A conversion row as `TrafficStore.submit_conversion` writes it."""
    now = datetime.now(UTC)
    return {
        "conversion_id": f"conv_{uuid.uuid4().hex}",
        "click_id": f"click{n:012d}",
        "campaign_id": "cmp_bench",
        "network_id": "net_bench",
        "event_type": "sale",
        "payout": Decimal("12.50"),
        "currency": "USD",
        "txid": f"ORDER-{n}",
        "email_sha256": "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
        "phone_meta_sha256": "",
        "phone_tiktok_sha256": "",
        "external_id_sha256": "",
        "pii_dropped": [],
        "is_duplicate": 0,
        "attributed": 1,
        "received_at": now,
        "workflow_run_id": str(uuid.uuid4()),
        "recorded_at": now,
    }


def fire_row(n: int) -> Row:
    """A pixel fire (one delivery attempt) as `AttemptLog.submit` writes it."""
    now = datetime.now(UTC)
    body = f'{{"data":[{{"event_name":"Purchase","event_id":"conv_{n}","user_data":{{}}}}]}}'
    return {
        "fire_id": uuid.uuid4().hex,
        "conversion_id": f"conv_{n:012d}",
        "campaign_id": "cmp_bench",
        "pixel_id": "px_bench",
        "platform": "meta",
        "pixel_name": "Meta main",
        "event_name": "Purchase",
        "event_id": f"conv_{n:012d}",
        "attempt": 1,
        "request_url": "https://graph.facebook.com/v24.0/123/events",
        "request_body": body,
        "http_status": 200,
        "response_body": '{"events_received":1,"fbtrace_id":"AbC"}',
        "response_truncated": 0,
        "verdict": "delivered",
        "success": 1,
        "error": "",
        "duration_ms": 120,
        "fired_at": now,
        "scheduled_at": now,
        "request_body_erased": body,
    }


def click_row(n: int) -> Row:
    """A click as `TrafficStore.save_click` writes it."""
    return {
        "click_id": uuid.uuid4().hex[:22],
        "campaign_id": "cmp_bench",
        "clicked_at": datetime.now(UTC),
        "ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1",
        "landing_url": f"https://shop.example/lp?cid={n}",
        "referrer": "https://news.example/article",
        "fbclid": "IwAR0abc",
        "ttclid": "",
        "fbc": f"fb.1.1700000000000.IwAR0abc{n}",
        "fbp": "",
        "ttp": "",
        "country": "US",
        "region": "CA",
        "city": "Menlo Park",
        "zip_code": "",
        "external_id": "",
        "sub1": "",
        "sub2": "",
        "sub3": "",
        "sub4": "",
        "sub5": "",
    }


SHAPES: list[tuple[str, Callable[[int], Row], int]] = [
    ("clicks", click_row, 1),
    ("clicks", click_row, 50),
    ("conversions", conversion_row, 1),
    ("conversions", conversion_row, 50),
    ("pixel_fires", fire_row, 1),
    ("pixel_fires", fire_row, 50),
]


@dataclass
class Sample:
    latencies_s: list[float]
    rows: int
    wall_s: float


def set_fsync(client: ClickHouse, table: str, on: bool) -> None:
    if on:
        settings = ", ".join(f"{name} = 1" for name in FSYNC_SETTINGS)
        client.command(f"ALTER TABLE {table} MODIFY SETTING {settings}")
    else:
        client.command(f"ALTER TABLE {table} RESET SETTING {', '.join(FSYNC_SETTINGS)}")


def measure(
    client: ClickHouse, table: str, make: Callable[[int], Row], batch: int, inserts: int
) -> Sample:
    """`inserts` back-to-back inserts of `batch` rows each; rows are built beforehand."""
    batches = [[make(i * batch + j) for j in range(batch)] for i in range(inserts)]
    columns = list(batches[0][0])
    latencies = []
    started = time.perf_counter()
    for rows in batches:
        begun = time.perf_counter()
        client.insert(table, [list(r.values()) for r in rows], column_names=columns)
        latencies.append(time.perf_counter() - begun)
    return Sample(latencies, batch * inserts, time.perf_counter() - started)


def fsync_probe(directory: Path, count: int = 200) -> float:
    """p50 seconds of a 4 KiB write + fsync of a new file in `directory` (this disk's unit)."""
    times = []
    block = os.urandom(4096)
    for n in range(count):
        path = directory / f"probe-{n}"
        begun = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.write(fd, block)
            os.fsync(fd)
        finally:
            os.close(fd)
        times.append(time.perf_counter() - begun)
        path.unlink()
    return statistics.median(times)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(rounds: int, inserts: int, modes: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="relay-chdb-fsync-") as tmp:
        client = open_clickhouse(f"chdb://{tmp}/clickhouse", "relay_bench", pool_size=1)
        try:
            apply_migrations(client)
            for table, make, batch in SHAPES:  # warm-up: first parts, caches
                measure(client, table, make, batch, 5)
            results: dict[tuple[str, int, str], list[Sample]] = {}
            probes: list[float] = []
            for round_no in range(rounds):
                probes.append(fsync_probe(Path(tmp), 50))  # the disk's unit, this round
                # Alternate which mode goes first, so neither always follows the other.
                order = modes if round_no % 2 == 0 else list(reversed(modes))
                for mode in order:
                    for table in {t for t, _, _ in SHAPES}:
                        set_fsync(client, table, mode == "on")
                    for table, make, batch in SHAPES:
                        sample = measure(client, table, make, batch, inserts)
                        results.setdefault((table, batch, mode), []).append(sample)
            probe = statistics.median(probes)
        finally:
            client.close()
    _report(results, modes, probe, rounds, inserts)


def _report(
    results: dict[tuple[str, int, str], list[Sample]],
    modes: list[str],
    probe_s: float,
    rounds: int,
    inserts: int,
) -> None:
    print(f"{rounds} rounds x {inserts} inserts per shape and mode, one writer")
    print(
        f"{'table':<12} {'rows':>4} {'fsync':<5} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'rows/s':>8} {'cost p50':>9}"
    )
    for table, _, batch in SHAPES:
        base: float | None = None
        for mode in modes:
            samples = results[(table, batch, mode)]
            latencies = [x for s in samples for x in s.latencies_s]
            p50 = statistics.median(latencies) * 1000
            p95 = _percentile(latencies, 0.95) * 1000
            rate = sum(s.rows for s in samples) / sum(s.wall_s for s in samples)
            cost = "" if base is None else f"+{p50 - base:.2f} ms"
            base = p50 if base is None else base
            print(
                f"{table:<12} {batch:>4} {mode:<5} {p50:>7.2f} {p95:>7.2f} {rate:>8.0f} {cost:>9}"
            )
    print(
        f"fsync probe (4 KiB write + fsync, this disk, median of rounds): {probe_s * 1000:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inserts", type=int, default=60, help="per shape, mode and round")
    parser.add_argument(
        "--mode",
        choices=("both", "on", "off"),
        default="both",
        help="one mode alone: for counting fsync calls with strace",
    )
    args = parser.parse_args()
    modes = ["off", "on"] if args.mode == "both" else [args.mode]
    run(args.rounds, args.inserts, modes)


if __name__ == "__main__":
    main()
