"""How busy each campaign and network is: the console's lists show, at a glance, whether a
network's postbacks arrive and a campaign's tracking link is clicked.

Per campaign or network: the conversions received since a time and the newest one ever,
duplicates included (as the Conversions list shows them, where the count links to); per
campaign, the clicks since that time. Conversions and clicks are counted by distinct ID,
so a row written twice (before a merge) counts once without reading FINAL."""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from relay.store.pool import ClickHouse
from relay.store.rows import as_utc


@dataclass(frozen=True)
class Activity:
    conversions: int  # received since the time asked for
    last_conversion: datetime | None  # UTC, the newest ever
    clicks: int = 0  # campaigns only: clicks since the time asked for


def activity(
    client: ClickHouse, by: Literal["campaign_id", "network_id"], since: datetime
) -> dict[str, Activity]:
    """Each campaign's or network's activity (one with none is absent)."""
    params = {"since": since}
    recent = "received_at >= {since:DateTime64(3, 'UTC')}"
    rows = client.query(
        f"SELECT {by}, uniqExactIf(conversion_id, {recent}), max(received_at) "
        f"FROM conversions GROUP BY {by}",
        parameters=params,
    ).result_rows
    found = {str(key): Activity(int(n), as_utc(last)) for key, n, last in rows}
    if by == "network_id":
        return found
    clicks = client.query(
        "SELECT campaign_id, uniqExact(click_id) FROM clicks "
        "WHERE clicked_at >= {since:DateTime64(3, 'UTC')} GROUP BY campaign_id",
        parameters=params,
    ).result_rows
    for campaign_id, count in clicks:
        seen = found.get(str(campaign_id), Activity(0, None))
        found[str(campaign_id)] = Activity(seen.conversions, seen.last_conversion, int(count))
    return found
