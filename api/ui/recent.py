"""The last 24 hours of each campaign or network, for the console's lists: clicks and
conversions received, the newest conversion, and a link to those conversions."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from relay.runtime import Runtime
from relay.store.recent import Activity, activity

RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class Recent:
    by: Literal["campaign_id", "network_id"]
    since: datetime  # in the workspace's zone
    found: dict[str, Activity]  # newest conversions in the workspace's zone

    def of(self, key: str) -> Activity:
        return self.found.get(key, Activity(0, None))

    def conversions_link(self, key: str) -> str:
        """The Conversions list of this campaign or network over the same hours."""
        since = self.since.isoformat(timespec="seconds")  # with its offset: no DST doubt
        return "/ui/conversions?" + urlencode({self.by: key, "since": since})


async def recent_activity(
    runtime: Runtime, by: Literal["campaign_id", "network_id"], now: datetime, zone: ZoneInfo
) -> Recent:
    found = await runtime.run(activity, runtime.clickhouse, by, now - RECENT)
    local = {
        key: Activity(
            a.conversions, a.last_conversion and a.last_conversion.astimezone(zone), a.clicks
        )
        for key, a in found.items()
    }
    return Recent(by, (now - RECENT).astimezone(zone), local)
