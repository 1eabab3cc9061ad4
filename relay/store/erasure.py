"""Erasing one click's personal data on request, wherever Relay stored it.

The click's personal fields and its conversions' hashed identifiers are blanked, and the
attempt rows of those conversions get their `_erased` request and URL
(relay/domain/personal_data.py).
Every row stays with its IDs, times and outcomes, so dedup and attribution are unchanged.
Mutations rewrite every stored copy of a row (`ALTER TABLE ... UPDATE`, waited for): a new
row version would leave reads without FINAL free to pick the old copy. Each statement
touches only rows still holding personal data, so a repeat erases nothing and reports so.
"""

from dataclasses import dataclass, field
from typing import Any

from relay.domain.personal_data import CLICK_FIELDS, CONVERSION_FIELDS
from relay.store.pool import ClickHouse

_WAIT = "SETTINGS mutations_sync = 2"
# Attempt columns and the `_erased` copy each becomes.
_ATTEMPT_COPIES = {
    "pixel_fires": ("request_body",),
    "postback_attempts": ("url", "request_body"),
}


@dataclass
class Erasure:
    """What one erasure blanked: the click's fields that held a value, and how many rows."""

    click_fields: list[str] = field(default_factory=list)
    conversions: int = 0
    pixel_fires: int = 0
    postback_attempts: int = 0


def _holding(columns: tuple[str, ...]) -> str:
    return "(" + " OR ".join(f"{c} != ''" for c in columns) + ")"


def _count(client: ClickHouse, sql: str, params: dict[str, Any]) -> int:
    return int(client.query(sql, parameters=params).result_rows[0][0])


def _erase_click(client: ClickHouse, params: dict[str, Any]) -> list[str] | None:
    """The click's fields that held a value (blanked now), or None if no click has the ID."""
    # Every stored copy: a field counts if any copy still holds it.
    flags = ", ".join(f"max({c} != '')" for c in CLICK_FIELDS)
    result = client.query(
        f"SELECT count(), {flags} FROM clicks WHERE click_id = {{c:String}}", parameters=params
    ).result_rows[0]
    if not result[0]:
        return None
    held = [name for name, flag in zip(CLICK_FIELDS, result[1:], strict=True) if flag]
    if held:
        blanks = ", ".join(f"{c} = ''" for c in held)
        client.command(
            f"ALTER TABLE clicks UPDATE {blanks} WHERE click_id = {{c:String}} {_WAIT}", params
        )
    return held


def _erase_conversions(client: ClickHouse, params: dict[str, Any]) -> tuple[list[str], int]:
    """Every conversion ID of the click, and how many had identifiers (blanked now)."""
    holding = _holding(CONVERSION_FIELDS)
    rows = client.query(
        f"SELECT conversion_id, max({holding}) FROM conversions "
        "WHERE click_id = {c:String} GROUP BY conversion_id",
        parameters=params,
    ).result_rows
    ids = [str(r[0]) for r in rows]
    held = sum(1 for r in rows if r[1])
    if held:
        blanks = ", ".join(f"{c} = ''" for c in CONVERSION_FIELDS)
        client.command(
            f"ALTER TABLE conversions UPDATE {blanks} "
            f"WHERE click_id = {{c:String}} AND {holding} {_WAIT}",
            params,
        )
    return ids, held


def _erase_attempts(client: ClickHouse, table: str, conversion_ids: list[str]) -> int:
    columns = _ATTEMPT_COPIES[table]
    personal = "(" + " OR ".join(f"{c} != {c}_erased" for c in columns) + ")"
    condition = f"conversion_id IN {{ids:Array(String)}} AND {personal}"
    params = {"ids": conversion_ids}
    erased = _count(client, f"SELECT count() FROM {table} WHERE {condition}", params)
    if erased:
        copies = ", ".join(f"{c} = {c}_erased" for c in columns)
        client.command(f"ALTER TABLE {table} UPDATE {copies} WHERE {condition} {_WAIT}", params)
    return erased


def erase_click(client: ClickHouse, click_id: str) -> Erasure | None:
    """Erase the personal data stored under one click ID; None when nothing is stored
    under it (no click, no conversion). Blocking: call it off the event loop."""
    params = {"c": click_id}
    click_fields = _erase_click(client, params)
    conversion_ids, conversions = _erase_conversions(client, params)
    if click_fields is None and not conversion_ids:
        return None
    erasure = Erasure(click_fields=click_fields or [], conversions=conversions)
    if conversion_ids:
        erasure.pixel_fires = _erase_attempts(client, "pixel_fires", conversion_ids)
        erasure.postback_attempts = _erase_attempts(client, "postback_attempts", conversion_ids)
    return erasure
