"""Sends being retried now: the overview's view of an outage before it turns into failures.

A send fails for good only once its retry window is over (24 hours by default), so while a
platform is down the overview's failure counts stay at zero. This finds the sends still
being retried instead: of a conversion whose run has not finished (no `delivery_states`
row yet), a pixel fire or outbound postback whose latest attempt failed with a retryable
verdict. A send that failed for good (a permanent verdict) while its conversion's other
sends carry on is not retried, so it is not listed.

Only conversions received within `lookback` are looked at: no send of an older one can
still be retrying (the caller passes the retry window plus a margin). Conversions received
before the `delivery_states` table existed (migration 0009) have no row there; within the
lookback, one whose last attempt was retryable is listed until the lookback passes it.
A run's `delivery_states` row is written after its conversion was received, so only rows
written since the lookback began are read (with an hour's margin for the clocks of other
hosts): at 1,000,000 conversions over 30 days, the two queries take about a quarter of a
second (`bench/console_queries.py`)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from relay.platforms.classify import Verdict
from relay.store.pool import ClickHouse
from relay.store.rows import as_utc

RETRYABLE = Verdict.RETRYABLE.value
# Each send's latest attempt, from the pixel fire and outbound postback logs.
_LATEST = (
    "SELECT conversion_id, 'pixel' AS kind, pixel_id AS target, platform AS series, "
    "count() AS attempts, argMax(verdict, fired_at) AS last_verdict, "
    "argMax(error, fired_at) AS last_error, max(fired_at) AS last_at "
    "FROM pixel_fires WHERE conversion_id IN (SELECT conversion_id FROM pending) "
    "GROUP BY conversion_id, pixel_id, platform "
    "UNION ALL "
    "SELECT conversion_id, 'postback', postback_id, 'postback', count(), "
    "argMax(verdict, sent_at), argMax(error, sent_at), max(sent_at) "
    "FROM postback_attempts WHERE conversion_id IN (SELECT conversion_id FROM pending) "
    "GROUP BY conversion_id, postback_id"
)


@dataclass(frozen=True)
class RetryingSend:
    conversion_id: str
    received_at: datetime  # UTC
    campaign_id: str
    kind: str  # "pixel" or "postback"
    target_id: str
    series: str  # "meta", "tiktok" or "postback"
    attempts: int
    last_error: str
    last_at: datetime  # UTC


@dataclass(frozen=True)
class Retrying:
    sends: list[RetryingSend]  # the newest conversions' first
    by_series: dict[str, int]  # every retrying send, by series
    conversions: int  # how many conversions they belong to


def retrying(
    client: ClickHouse, now: datetime, lookback: timedelta, limit: int, campaign_id: str | None
) -> Retrying:
    """The sends being retried now: the newest `limit` listed, all of them counted."""
    params: dict[str, Any] = {"since": now - lookback, "limit": limit, "retryable": RETRYABLE}
    campaign = "1"
    if campaign_id is not None:
        params["campaign_id"] = campaign_id
        campaign = "campaign_id = {campaign_id:String}"
    retrying_sends = (
        "WITH pending AS (SELECT conversion_id, received_at, campaign_id FROM conversions FINAL "
        "WHERE received_at >= {since:DateTime64(3, 'UTC')} AND is_duplicate = 0 "
        f"AND {campaign} AND conversion_id NOT IN (SELECT conversion_id FROM delivery_states "
        "WHERE finished_at >= {since:DateTime64(3, 'UTC')} - toIntervalHour(1))) "
        f"SELECT * FROM ({_LATEST}) AS l INNER JOIN pending AS p "
        "ON p.conversion_id = l.conversion_id WHERE l.last_verdict = {retryable:String}"
    )
    counts = client.query(
        f"SELECT series, count(), uniqExact(conversion_id) FROM ({retrying_sends}) "
        "GROUP BY ROLLUP(series)",
        parameters=params,
    ).result_rows
    rows = client.query(
        "SELECT conversion_id, received_at, campaign_id, kind, target, series, attempts, "
        f"last_error, last_at FROM ({retrying_sends}) "
        "ORDER BY received_at DESC, conversion_id, kind, target LIMIT {limit:UInt32}",
        parameters=params,
    ).result_rows
    sends = [
        RetryingSend(
            conversion_id=str(row[0]),
            received_at=as_utc(row[1]),
            campaign_id=str(row[2]),
            kind=str(row[3]),
            target_id=str(row[4]),
            series=str(row[5]),
            attempts=int(row[6]),
            last_error=str(row[7]),
            last_at=as_utc(row[8]),
        )
        for row in rows
    ]
    # ROLLUP's total row has the default series, '': the conversions of every series.
    by_series = {str(series): int(n) for series, n, _ in counts if series}
    total = next((int(c) for series, _, c in counts if not series), 0)
    return Retrying(sends, by_series, total)
