"""The pixel fire log: append-only, one row per delivery attempt."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from relay.models import PixelFire
from relay.store.rows import insert_dicts, select_dicts

_FIRE_COLS = (
    "fire_id, conversion_id, campaign_id, pixel_id, platform, pixel_name, event_name, "
    "event_id, attempt, request_url, request_body, http_status, response_body, "
    "response_truncated, verdict, success, error, duration_ms, fired_at, scheduled_at"
)


@dataclass(frozen=True)
class FireFilter:
    """Filters of `GET /api/pixel-logs`; None means no filter."""

    conversion_id: str | None = None
    campaign_id: str | None = None
    pixel_id: str | None = None
    platform: str | None = None
    success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def _fire(row: dict[str, Any]) -> PixelFire:
    row["http_status"] = row["http_status"] or None
    row["response_truncated"] = bool(row["response_truncated"])
    row["success"] = bool(row["success"])
    return PixelFire.model_validate(row)


class FireLog:
    """Writes attempt rows and reads them back with filters and paging."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def append(self, fire: PixelFire) -> None:
        row = fire.model_dump()
        row.update(
            http_status=fire.http_status or 0,
            response_truncated=int(fire.response_truncated),
            success=int(fire.success),
            scheduled_at=fire.scheduled_at or fire.fired_at,
        )
        insert_dicts(self._client, "pixel_fires", [row])

    def search(self, where: FireFilter, limit: int, offset: int) -> tuple[list[PixelFire], int]:
        """Newest first; returns one page and the total number of matching rows."""
        clauses = ["1"]
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        for column in ("conversion_id", "campaign_id", "pixel_id", "platform"):
            value = getattr(where, column)
            if value is not None:
                clauses.append(f"{column} = {{{column}:String}}")
                params[column] = value
        if where.success is not None:
            clauses.append("success = {success:UInt8}")
            params["success"] = int(where.success)
        if where.since is not None:
            clauses.append("fired_at >= {since:DateTime64(3, 'UTC')}")
            params["since"] = where.since
        if where.until is not None:
            clauses.append("fired_at < {until:DateTime64(3, 'UTC')}")
            params["until"] = where.until
        condition = " AND ".join(clauses)
        rows = select_dicts(
            self._client,
            f"SELECT {_FIRE_COLS} FROM pixel_fires WHERE {condition} "
            "ORDER BY fired_at DESC, attempt DESC LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
            params,
        )
        total = self._client.query(
            f"SELECT count() FROM pixel_fires WHERE {condition}", parameters=params
        ).result_rows[0][0]
        return [_fire(r) for r in rows], int(total)

    def for_conversion(self, conversion_id: str) -> list[PixelFire]:
        """Every attempt of one conversion, oldest first."""
        rows = select_dicts(
            self._client,
            f"SELECT {_FIRE_COLS} FROM pixel_fires WHERE conversion_id = {{id:String}} "
            "ORDER BY fired_at, attempt",
            {"id": conversion_id},
        )
        return [_fire(r) for r in rows]
