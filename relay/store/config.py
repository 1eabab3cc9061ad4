"""Configuration in ClickHouse: networks, campaigns, pixels, custom conversions, outbound
postbacks and workspace settings.

Each change writes a whole new row version (ReplacingMergeTree(version)); reads use FINAL,
so the newest version wins and a deleted row (deleted = 1) disappears.
"""

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from relay.domain.models import Campaign, CustomConversion, Network, OutboundPostback, Pixel
from relay.store.pool import ClickHouse
from relay.store.rows import insert_versioned, select_dicts, version_sql

M = TypeVar("M", bound=BaseModel)
TABLES: dict[type[BaseModel], str] = {
    Network: "networks",
    Campaign: "campaigns",
    CustomConversion: "custom_conversions",
    OutboundPostback: "outbound_postbacks",
}
_PIXEL_COLS = (
    "id, campaign_id, platform, platform_pixel_id, name, is_primary, event_name, "
    "test_event_code, tiktok_api, options, created_at, updated_at"
)


def _pixel(row: dict[str, Any]) -> Pixel:
    row["primary"] = bool(row.pop("is_primary"))
    row["event_name"] = row["event_name"] or None
    row["test_event_code"] = row["test_event_code"] or None
    row["options"] = json.loads(row["options"] or "{}")
    return Pixel.model_validate(row)


class ConfigStore:
    """CRUD over the configuration tables."""

    def __init__(self, client: ClickHouse, on_change: Callable[[], None] | None = None) -> None:
        self._client = client
        self._on_change = on_change or (lambda: None)

    def _write(self, table: str, row: dict[str, Any]) -> None:
        insert_versioned(self._client, table, row)
        self._on_change()

    def table_versions(self, tables: list[str]) -> tuple[tuple[str, int, int], ...]:
        """Per table, the highest row version and the stored row count: any write or
        delete changes one of them, so a cache can tell cheaply whether to reload."""
        sql = " UNION ALL ".join(
            f"SELECT '{t}' AS t, max(version) AS v, count() AS n FROM {t}" for t in tables
        )
        rows = self._client.query(sql).result_rows
        return tuple(sorted((str(t), int(v), int(n)) for t, v, n in rows))

    def _live(
        self, table: str, cols: str, where: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        sql = f"SELECT {cols} FROM {table} FINAL WHERE deleted = 0 AND {where} ORDER BY created_at"
        return select_dicts(self._client, sql, params)

    def save(self, record: M) -> M:
        """Insert or replace a network, campaign, custom conversion or outbound postback."""
        self._write(TABLES[type(record)], record.model_dump())
        return record

    def get(self, model: type[M], record_id: str) -> M | None:
        """The live record with this ID, or None (never created, or deleted)."""
        found = self.find(model, "id = {id:String}", {"id": record_id})
        return found[0] if found else None

    def find(
        self, model: type[M], where: str = "1", params: dict[str, Any] | None = None
    ) -> list[M]:
        """Live records matching a bound condition, oldest first."""
        cols = ", ".join(model.model_fields)
        rows = self._live(TABLES[model], cols, where, params or {})
        return [model.model_validate(r) for r in rows]

    def in_campaign(self, model: type[M], campaign_id: str) -> list[M]:
        return self.find(model, "campaign_id = {c:String}", {"c": campaign_id})

    def delete(self, table: str, row_id: str) -> None:
        """Mark a configuration row deleted; attempt logs that name it are kept."""
        if table not in (*TABLES.values(), "pixels"):
            raise ValueError(f"not a configuration table: {table}")
        self._client.command(
            # No `deleted = 0` condition: in ClickHouse the REPLACE alias would shadow the
            # column there, matching nothing. Marking a deleted row again is harmless.
            f"INSERT INTO {table} SELECT * REPLACE (1 AS deleted, {version_sql(table)} AS version) "
            f"FROM {table} FINAL WHERE id = {{version_of:String}}",
            parameters={"version_of": row_id},
        )
        self._on_change()

    # Pixels keep their encrypted token in the row, so they have their own mapping.
    def save_pixel(self, pixel: Pixel, token_ciphertext: str) -> Pixel:
        """Write a pixel with its encrypted token (the token never leaves the store)."""
        row = pixel.model_dump(exclude={"primary"})
        row.update(
            is_primary=int(pixel.primary),
            event_name=pixel.event_name or "",
            test_event_code=pixel.test_event_code or "",
            options=json.dumps(pixel.options, sort_keys=True),
            token_ciphertext=token_ciphertext,
        )
        self._write("pixels", row)
        return pixel

    def get_pixel(self, pixel_id: str) -> Pixel | None:
        rows = self._live("pixels", _PIXEL_COLS, "id = {id:String}", {"id": pixel_id})
        return _pixel(rows[0]) if rows else None

    def pixel_token_ciphertext(self, pixel_id: str) -> str | None:
        """The encrypted access token of a pixel, for the send activity alone."""
        rows = self._live("pixels", "token_ciphertext", "id = {id:String}", {"id": pixel_id})
        return str(rows[0]["token_ciphertext"]) if rows else None

    def pixels_with_tokens(self) -> list[tuple[Pixel, str]]:
        """Every live pixel with its encrypted token, for the in-process cache."""
        rows = self._live("pixels", f"{_PIXEL_COLS}, token_ciphertext", "1", {})
        sealed = [str(r.pop("token_ciphertext")) for r in rows]
        return [(_pixel(r), token) for r, token in zip(rows, sealed, strict=True)]

    def list_pixels(self, campaign_id: str) -> list[Pixel]:
        rows = self._live("pixels", _PIXEL_COLS, "campaign_id = {c:String}", {"c": campaign_id})
        return [_pixel(r) for r in rows]

    # Workspace settings
    def get_setting(self, key: str) -> str | None:
        rows = select_dicts(
            self._client,
            "SELECT value FROM workspace_settings FINAL WHERE key = {k:String}",
            {"k": key},
        )
        return str(rows[0]["value"]) if rows else None

    def put_setting(self, key: str, value: str) -> None:
        insert_versioned(self._client, "workspace_settings", {"key": key, "value": value}, "key")
        self._on_change()
