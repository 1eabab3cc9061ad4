"""Keeping the personal-data TTLs of migration 0008 in step with the settings.

Each personal column has a ClickHouse column TTL that blanks it (or, for a logged request,
turns it into its `_erased` copy) some days after the row's time, and a comment that states
those days. At start, a table whose comments show other days than the settings gets its
TTLs re-stated in one ALTER; ClickHouse then re-evaluates the TTL of the stored rows
(`materialize_ttl_after_modify`), which rewrites the table once. A start with unchanged
settings alters nothing.
"""

import logging
from dataclasses import dataclass

from relay.domain.personal_data import CLICK_FIELDS, CONVERSION_FIELDS
from relay.store.pool import ClickHouse
from relay.store.rows import select_dicts

log = logging.getLogger(__name__)

# The platforms refuse events older than 7 days: a click must keep what a send needs
# for that long past the end of its campaign's attribution window.
PLATFORM_EVENT_AGE_DAYS = 7


@dataclass(frozen=True)
class PersonalColumns:
    """Personal columns of one table, expiring `days` after `time_column`."""

    table: str
    time_column: str
    columns: tuple[str, ...]
    setting: str  # the environment variable that sets their days


CLICKS = PersonalColumns("clicks", "clicked_at", CLICK_FIELDS, "RELAY_CLICK_PII_RETENTION_DAYS")
DELIVERY = (
    PersonalColumns(
        "conversions", "received_at", CONVERSION_FIELDS, "RELAY_DELIVERY_PII_RETENTION_DAYS"
    ),
    PersonalColumns(
        "pixel_fires", "fired_at", ("request_body",), "RELAY_DELIVERY_PII_RETENTION_DAYS"
    ),
    PersonalColumns(
        "postback_attempts", "sent_at", ("url", "request_body"), "RELAY_DELIVERY_PII_RETENTION_DAYS"
    ),
)


def column_comment(days: int, time_column: str) -> str:
    """The comment a personal column carries; migration 0008 writes the same text."""
    return f"personal data, kept {days} days after {time_column}"


def _comments(client: ClickHouse, table: str) -> dict[str, str]:
    rows = select_dicts(
        client,
        "SELECT name, comment FROM system.columns "
        "WHERE database = currentDatabase() AND table = {t:String}",
        {"t": table},
    )
    return {str(r["name"]): str(r["comment"]) for r in rows}


def _restate(client: ClickHouse, group: PersonalColumns, days: int) -> bool:
    comment = column_comment(days, group.time_column)
    current = _comments(client, group.table)
    stale = [c for c in group.columns if current.get(c) != comment]
    if not stale:
        return False
    # Identifiers and the day count are Relay's own (days is a validated int): DDL
    # cannot take bound parameters.
    clauses = ", ".join(
        f"MODIFY COLUMN {column} COMMENT '{comment}' "
        f"TTL toDateTime({group.time_column}) + INTERVAL {int(days)} DAY"
        for column in stale
    )
    client.command(f"ALTER TABLE {group.table} {clauses}")
    log.info("personal data in %s: now kept %d days (%s)", group.table, days, group.setting)
    return True


def apply_retention(client: ClickHouse, click_days: int, delivery_days: int) -> list[str]:
    """Re-state the TTLs whose days differ from the settings; the tables altered."""
    groups = [(CLICKS, click_days), *((group, delivery_days) for group in DELIVERY)]
    altered = [group.table for group, days in groups if _restate(client, group, days)]
    _warn_if_clicks_expire_early(client, click_days)
    return altered


def _warn_if_clicks_expire_early(client: ClickHouse, click_days: int) -> None:
    rows = client.query(
        "SELECT max(attribution_window_days) FROM campaigns FINAL WHERE deleted = 0"
    ).result_rows
    window = int(rows[0][0]) if rows and rows[0][0] is not None else 0
    if window + PLATFORM_EVENT_AGE_DAYS > click_days:
        log.warning(
            "%s is %d days, but a campaign attributes conversions to clicks up to %d days old "
            "and a send may follow %d days later: conversions on clicks older than %d days are "
            "sent without the click's IP, user agent and click IDs",
            CLICKS.setting,
            click_days,
            window,
            PLATFORM_EVENT_AGE_DAYS,
            click_days,
        )
