"""The console's overview: conversions received per hour or day in the workspace's timezone,
how their sends ended (per platform and for outbound postbacks), and the conversions with a
send that failed for good.

Sends are counted from `delivery_states`, not from the attempt logs: a workflow writes one
row per conversion once every send is over, with each send's final state (a redelivery
writes the conversion's new row, which replaces the old one). So a fire retried three times
then delivered is one delivered send, and a failed fire redelivered since counts as
delivered. A send whose conversion is still running is in no count (it is neither delivered
nor failed yet). Each send is counted in the bucket of its conversion's `received_at`, so a
bucket's sends belong to that bucket's conversions.

Every query is bound (the timezone too); only the bucket's function name and the states'
names, Relay's own constants, are written into the SQL."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from relay.domain.delivery_states import DeliveryState
from relay.store.pool import ClickHouse
from relay.store.rows import as_utc

Unit = Literal["hour", "day"]
SERIES = ("meta", "tiktok", "postback")  # a pixel's platform, or an outbound postback
FINAL_STATES = (DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.NOT_SENDABLE)
HOURLY_UP_TO = timedelta(hours=48)
_START_OF: dict[Unit, str] = {"hour": "toStartOfHour", "day": "toStartOfDay"}

_RANGE = (
    "received_at >= {since:DateTime64(3, 'UTC')} AND received_at < {until:DateTime64(3, 'UTC')} "
    "AND is_duplicate = 0"
)
# The latest record of each conversion received in the range (a redelivery's replaces the
# run's), with its receipt time and campaign.
_RECORDS = (
    "SELECT c.conversion_id AS conversion_id, c.received_at AS received_at, "
    "c.campaign_id AS campaign_id, s.state AS state, s.send_kinds AS kinds, "
    "s.send_targets AS targets, s.send_states AS states, s.send_reasons AS reasons "
    f"FROM (SELECT conversion_id, received_at, campaign_id FROM conversions FINAL WHERE {_RANGE}) "
    "AS c INNER JOIN (SELECT * FROM delivery_states FINAL WHERE conversion_id IN "
    f"(SELECT conversion_id FROM conversions WHERE {_RANGE})) AS s "
    "ON s.conversion_id = c.conversion_id"
)


@dataclass
class Bucket:
    """One hour or day: its start in the workspace's timezone, the conversions received
    in it, and their sends' counts by (series, final state)."""

    start: datetime
    conversions: int = 0
    sends: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, series: str, state: str) -> int:
        return self.sends.get((series, state), 0)


@dataclass(frozen=True)
class FailedSend:
    kind: str  # "pixel" or "postback"
    target_id: str
    reason: str


@dataclass(frozen=True)
class NeedsAttention:
    """A conversion with at least one send failed for good (state failed or partial)."""

    conversion_id: str
    received_at: datetime  # UTC
    campaign_id: str
    state: str
    failed: list[FailedSend]


def unit_for(since: datetime, until: datetime) -> Unit:
    """Hours for a range up to 48 hours, days beyond."""
    return "hour" if until - since <= HOURLY_UP_TO else "day"


def bucket_starts(since: datetime, until: datetime, unit: Unit, zone: ZoneInfo) -> list[datetime]:
    """Every bucket from the one holding `since` to the one holding the instant before
    `until`: hours, or days from local midnight (a day around a clock change has 23 or 25
    hours)."""
    first = since.astimezone(zone)
    starts: list[datetime] = []
    if unit == "hour":
        at = first.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        while at < until:
            starts.append(at.astimezone(zone))
            at += timedelta(hours=1)
        return starts
    day: date = first.date()
    while (start := datetime.combine(day, time(), zone)) < until:
        starts.append(start)
        day += timedelta(days=1)
    return starts


class Overview:
    def __init__(self, client: ClickHouse) -> None:
        self._client = client

    def _params(
        self, since: datetime, until: datetime, zone: ZoneInfo, campaign_id: str | None
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"since": since, "until": until, "tz": zone.key}
        if campaign_id is None:
            return "1", params
        params["campaign_id"] = campaign_id
        return "campaign_id = {campaign_id:String}", params

    def buckets(
        self, since: datetime, until: datetime, zone: ZoneInfo, campaign_id: str | None = None
    ) -> list[Bucket]:
        """Per hour (ranges up to 48 hours) or day, from `since` to `until` (aware times):
        conversions received (duplicates not counted) and their sends by final state."""
        unit = unit_for(since, until)
        start = f"toUnixTimestamp({_START_OF[unit]}(received_at, {{tz:String}}))"
        condition, params = self._params(since, until, zone, campaign_id)
        received = self._client.query(
            f"SELECT {start} AS bucket, count() FROM conversions FINAL "
            f"WHERE {_RANGE} AND {condition} GROUP BY bucket",
            parameters=params,
        ).result_rows
        # A pixel's platform from its configuration row (a deleted pixel's row keeps it).
        states = ", ".join(f"'{s.value}'" for s in FINAL_STATES)
        sends = self._client.query(
            f"SELECT {start} AS bucket, if(kind = 'pixel', p.platform, 'postback') AS series, "
            f"send_state, count() FROM ({_RECORDS}) AS r "
            "ARRAY JOIN r.kinds AS kind, r.targets AS target, r.states AS send_state "
            "LEFT JOIN (SELECT id, platform FROM pixels FINAL) AS p ON p.id = target "
            f"WHERE send_state IN ({states}) AND {condition} "
            "GROUP BY bucket, series, send_state",
            parameters=params,
        ).result_rows
        # Keyed by the instant: two local times a clock change repeats (01:00 twice when
        # summer time ends) compare equal as datetimes of one zone, but are two hours.
        found = {int(s.timestamp()): Bucket(s) for s in bucket_starts(since, until, unit, zone)}

        def bucket(stamp: int) -> Bucket:
            return found.setdefault(int(stamp), Bucket(datetime.fromtimestamp(int(stamp), zone)))

        for stamp, count in received:
            bucket(stamp).conversions = int(count)
        for stamp, series, state, count in sends:
            bucket(stamp).sends[(str(series), str(state))] = int(count)
        return [found[stamp] for stamp in sorted(found)]

    def needing_attention(
        self,
        since: datetime,
        until: datetime,
        limit: int,
        campaign_id: str | None = None,
    ) -> tuple[list[NeedsAttention], int]:
        """The newest conversions received in the range with a send failed for good (a
        redelivery since has replaced their record if it delivered), and how many there are."""
        condition, params = self._params(since, until, ZoneInfo("UTC"), campaign_id)
        params["limit"] = limit
        failed = DeliveryState.FAILED.value
        rows = self._client.query(
            "SELECT conversion_id, received_at, campaign_id, state, "
            f"arrayFilter((k, s) -> s = '{failed}', kinds, states) AS failed_kinds, "
            f"arrayFilter((t, s) -> s = '{failed}', targets, states) AS failed_targets, "
            f"arrayFilter((r, s) -> s = '{failed}', reasons, states) AS failed_reasons, "
            f"count() OVER () AS total FROM ({_RECORDS}) "
            f"WHERE has(states, '{failed}') AND {condition} "
            "ORDER BY received_at DESC, conversion_id LIMIT {limit:UInt32}",
            parameters=params,
        ).result_rows
        found = [
            NeedsAttention(
                conversion_id=str(cid),
                received_at=as_utc(received),
                campaign_id=str(campaign),
                state=str(state),
                failed=[
                    FailedSend(str(k), str(t), str(r))
                    for k, t, r in zip(kinds, targets, reasons, strict=True)
                ],
            )
            for cid, received, campaign, state, kinds, targets, reasons, _ in rows
        ]
        return found, int(rows[0][-1]) if rows else 0
