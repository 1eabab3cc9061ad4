"""Sends being retried now: the overview's view of an outage before it turns into failures.

A send fails for good only once its retry window is over (24 hours by default), so while a
platform is down the overview's failure counts stay at zero. This finds the sends still
being retried instead: of a conversion whose run has not finished (no `delivery_states`
row yet), a pixel fire or outbound postback whose latest attempt failed with a retryable
verdict, and recently. A send that failed for good (a permanent verdict) while its
conversion's other sends carry on is not retried, so it is not listed.

Two bounds keep out runs that will never write their row (terminated, or recorded before
the `delivery_states` table existed): the conversion was received within `lookback` (the
retry window and a margin), and the send's last attempt was within `quiet` (a send being
retried tries again at least that often: the longest backoff or Retry-After, and a
margin). A run's `delivery_states` row is written after its conversion was received, so
only rows written since the lookback began are read (with an hour's margin for the clocks
of other hosts). At 1,000,000 conversions over 30 days the query takes about 0.15 s
(`bench/console_queries.py`)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from relay.domain.models import Verdict
from relay.store.overview import SERIES
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
    """One send being retried: its conversion, what it is, and how its last attempt went."""

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
    """The newest sends being retried, and how many there are in all."""

    sends: list[RetryingSend]  # the newest conversions' first, up to the limit
    by_series: dict[str, int]  # every send being retried, by series
    conversions: int  # how many conversions they belong to

    @property
    def count(self) -> int:
        return sum(self.by_series.values())


_COLUMNS = (
    "p.conversion_id, p.received_at, p.campaign_id, l.kind, l.target, l.series, l.attempts, "
    "l.last_error, l.last_at"
)


def retrying_sends(
    client: ClickHouse,
    now: datetime,
    bounds: tuple[timedelta, timedelta],
    limit: int,
    campaign_id: str | None,
) -> Retrying:
    """The sends being retried now, bounded by (lookback, quiet): the newest `limit`
    listed, all of them counted (in the same query, so the two agree)."""
    lookback, quiet = bounds
    params: dict[str, Any] = {
        "since": now - lookback,
        "tried_since": now - quiet,
        "limit": limit,
        "retryable": RETRYABLE,
    }
    campaign = "1"
    if campaign_id is not None:
        params["campaign_id"] = campaign_id
        campaign = "campaign_id = {campaign_id:String}"
    per_series = ", ".join(f"countIf(l.series = '{s}') OVER ()" for s in SERIES)
    rows = client.query(
        "WITH pending AS (SELECT conversion_id, received_at, campaign_id FROM conversions FINAL "
        "WHERE received_at >= {since:DateTime64(3, 'UTC')} AND is_duplicate = 0 "
        f"AND {campaign} AND conversion_id NOT IN (SELECT conversion_id FROM delivery_states "
        "WHERE finished_at >= {since:DateTime64(3, 'UTC')} - toIntervalHour(1))) "
        f"SELECT {_COLUMNS}, uniqExact(p.conversion_id) OVER (), {per_series} "
        f"FROM ({_LATEST}) AS l INNER JOIN pending AS p ON p.conversion_id = l.conversion_id "
        "WHERE l.last_verdict = {retryable:String} "
        "AND l.last_at >= {tried_since:DateTime64(3, 'UTC')} "
        "ORDER BY p.received_at DESC, p.conversion_id, l.kind, l.target LIMIT {limit:UInt32}",
        parameters=params,
    ).result_rows
    if not rows:
        return Retrying([], {}, 0)
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
    counts = dict(zip(SERIES, (int(n) for n in rows[0][10:]), strict=True))
    return Retrying(sends, {s: n for s, n in counts.items() if n}, int(rows[0][9]))
