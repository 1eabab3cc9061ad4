"""The console's overview queries, and its Campaigns and Networks lists' last 24 hours, on a
large generated workspace, against a reference: the plain count of the conversions
received in the range, which reads the same rows.

    .venv/bin/python -m bench.console_queries                    # 1,000,000 conversions
    .venv/bin/python -m bench.console_queries --conversions 100000

Data (in-process ClickHouse, a temporary directory): conversions spread evenly over 30
days, 2% duplicates, 20 campaigns, 7 networks; two clicks and two pixel fires (Meta,
TikTok) each; a `delivery_states`
row for each but the `--pending` share, whose fires' last attempt, in the last hour, was
retryable (sends being retried now), and 3% of finished ones with a failed fire (Needs
attention)."""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from relay.store.database import apply_migrations, open_clickhouse
from relay.store.overview import Overview
from relay.store.pool import ClickHouse
from relay.store.recent import activity
from relay.store.retrying import retrying_sends

SPAN_S = 30 * 86_400
# The overview's bounds with the default settings: a 24 h retry window and a day's margin;
# an hour's longest wait between attempts and 15 minutes' margin.
LOOKBACK, QUIET = timedelta(hours=48), timedelta(minutes=75)
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def _generate(client: ClickHouse, count: int, pending_every: int, now: datetime) -> None:
    """Rows from `numbers()`: n's conversion is received n * SPAN_S / count seconds ago."""
    params = {"now": now, "count": count}
    cid = "concat('c', toString(number))"
    at = (
        "{now:DateTime64(3, 'UTC')} - "
        f"toIntervalMillisecond(intDiv(number * {SPAN_S * 1000}, {{count:UInt64}}))"
    )
    numbers = "FROM numbers({count:UInt64})"
    client.command(
        "INSERT INTO conversions (conversion_id, campaign_id, network_id, is_duplicate, "
        f"attributed, received_at) SELECT {cid}, concat('cmp_', toString(number % 20)), "
        f"concat('net_', toString(number % 7)), number % 50 = 0, 1, {at} {numbers}",
        parameters=params,
    )
    client.command(  # two clicks per conversion
        "INSERT INTO clicks (click_id, campaign_id, clicked_at) SELECT concat('k', "
        f"toString(number), '-', toString(k)), concat('cmp_', toString(number % 20)), {at} "
        f"{numbers} ARRAY JOIN [1, 2] AS k",
        parameters=params,
    )
    client.command(
        "INSERT INTO pixels (id, platform, version) "
        "VALUES ('px_m', 'meta', 1), ('px_t', 'tiktok', 1)"
    )
    pending = f"number % {pending_every} = 1"  # 0 is a duplicate's
    failed = "number % 33 = 0"  # its Meta fire failed for good
    client.command(
        "INSERT INTO pixel_fires (conversion_id, pixel_id, platform, verdict, error, fired_at) "
        f"SELECT {cid}, p.1, p.2, if({pending}, 'retryable', "
        f"if({failed} AND p.1 = 'px_m', 'permanent', 'delivered')), '', "
        f"if({pending}, {{now:DateTime64(3, 'UTC')}} - toIntervalMinute(number % 60), {at}) "
        f"{numbers} "
        "ARRAY JOIN [('px_m', 'meta'), ('px_t', 'tiktok')] AS p",
        parameters=params,
    )
    client.command(
        "INSERT INTO delivery_states (conversion_id, state, send_kinds, send_targets, "
        f"send_states, send_reasons, finished_at) SELECT {cid}, "
        f"if({failed}, 'partial', 'delivered'), ['pixel', 'pixel'], ['px_m', 'px_t'], "
        f"if({failed}, ['failed', 'delivered'], ['delivered', 'delivered']), ['', ''], "
        f"{at} {numbers} WHERE NOT ({pending})",
        parameters=params,
    )


def _reference(client: ClickHouse, since: datetime) -> object:
    """The plain count of the conversions received since then: the same rows, read once."""
    return client.query(
        "SELECT count() FROM conversions FINAL WHERE received_at >= "
        "{since:DateTime64(3, 'UTC')} AND is_duplicate = 0",
        parameters={"since": since},
    ).result_rows


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    run()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--pending", type=float, default=0.002, help="share still retrying")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    now = datetime.now(UTC)
    zone = ZoneInfo("Europe/Berlin")
    with tempfile.TemporaryDirectory(prefix="relay-bench-console-") as data:
        client = open_clickhouse(f"chdb://{data}", "relay", pool_size=1)
        apply_migrations(client)
        started = time.perf_counter()
        _generate(client, args.conversions, round(1 / args.pending), now)
        print(
            f"generated {args.conversions:,} conversions in {time.perf_counter() - started:.1f} s"
        )
        overview = Overview(client)
        rows: list[tuple[str, float, float]] = []
        for name, span in RANGES.items():
            since = now - span
            ref = _median_ms(partial(_reference, client, since), args.repeat)
            charts = _median_ms(partial(overview.buckets, since, now, zone), args.repeat)
            failed = _median_ms(partial(overview.needing_attention, since, now, 20), args.repeat)
            rows += [(f"charts, {name}", charts, ref), (f"needs attention, {name}", failed, ref)]
        ref = _median_ms(partial(_reference, client, now - LOOKBACK), args.repeat)
        now_retrying = partial(retrying_sends, client, now, (LOOKBACK, QUIET), 20, None)
        rows.append(("retrying now (48 h)", _median_ms(now_retrying, args.repeat), ref))
        found = now_retrying()
        ref = rows[0][2]  # the plain count over 24 h
        for by in ("campaign_id", "network_id"):
            listed = partial(activity, client, by, now - RANGES["24h"])
            rows.append((f"list, {by.split('_')[0]}s (24 h)", _median_ms(listed, args.repeat), ref))
        client.close()
    print(f"{'query':<26}{'median ms':>10}{'reference ms':>14}{'ratio':>8}")
    for name, ms, ref in rows:
        print(f"{name:<26}{ms:>10.1f}{ref:>14.1f}{ms / ref:>7.1f}x")
    print(f"retrying now found {found.count:,} sends of {found.conversions:,} conversions")


if __name__ == "__main__":
    main()
