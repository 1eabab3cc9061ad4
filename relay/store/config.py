"""Networks, campaigns, pixels and workspace settings in ClickHouse.

Each change writes a whole new row version (ReplacingMergeTree(version)); reads use FINAL,
so the newest version wins and a deleted row (deleted = 1) disappears.
"""

from typing import Any

from clickhouse_connect.driver.client import Client

from relay.models import Campaign, Network, Pixel
from relay.store.rows import insert_dicts, next_version, select_dicts

_NETWORK_COLS = "id, name, postback_key, created_at, updated_at"
_CAMPAIGN_COLS = (
    "id, name, offer_url, currency, repeatable_events, attribution_window_days, "
    "created_at, updated_at"
)
_PIXEL_COLS = (
    "id, campaign_id, platform, platform_pixel_id, name, is_primary, event_name, "
    "test_event_code, tiktok_api, created_at, updated_at"
)


def _pixel(row: dict[str, Any]) -> Pixel:
    row["primary"] = bool(row.pop("is_primary"))
    row["event_name"] = row["event_name"] or None
    row["test_event_code"] = row["test_event_code"] or None
    return Pixel.model_validate(row)


class ConfigStore:
    """CRUD over the configuration tables."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _write(self, table: str, row: dict[str, Any]) -> None:
        insert_dicts(self._client, table, [{**row, "version": next_version()}])

    def _live(
        self, table: str, cols: str, where: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        sql = f"SELECT {cols} FROM {table} FINAL WHERE deleted = 0 AND {where} ORDER BY created_at"
        return select_dicts(self._client, sql, params)

    def delete(self, table: str, row_id: str) -> None:
        """Mark a configuration row deleted; attempt logs that name it are kept."""
        if table not in ("networks", "campaigns", "pixels"):
            raise ValueError(f"not a configuration table: {table}")
        self._client.command(
            f"INSERT INTO {table} SELECT * REPLACE (1 AS deleted, {{v:UInt64}} AS version) "
            f"FROM {table} FINAL WHERE id = {{id:String}} AND deleted = 0",
            parameters={"v": next_version(), "id": row_id},
        )

    # networks
    def save_network(self, network: Network) -> Network:
        """Insert or replace a network (the whole row)."""
        self._write("networks", network.model_dump())
        return network

    def get_network(self, network_id: str) -> Network | None:
        rows = self._live("networks", _NETWORK_COLS, "id = {id:String}", {"id": network_id})
        return Network.model_validate(rows[0]) if rows else None

    def network_by_key(self, postback_key: str) -> Network | None:
        rows = self._live(
            "networks", _NETWORK_COLS, "postback_key = {k:String}", {"k": postback_key}
        )
        return Network.model_validate(rows[0]) if rows else None

    def list_networks(self) -> list[Network]:
        return [Network.model_validate(r) for r in self._live("networks", _NETWORK_COLS, "1", {})]

    # campaigns
    def save_campaign(self, campaign: Campaign) -> Campaign:
        self._write("campaigns", campaign.model_dump())
        return campaign

    def get_campaign(self, campaign_id: str) -> Campaign | None:
        rows = self._live("campaigns", _CAMPAIGN_COLS, "id = {id:String}", {"id": campaign_id})
        return Campaign.model_validate(rows[0]) if rows else None

    def list_campaigns(self) -> list[Campaign]:
        rows = self._live("campaigns", _CAMPAIGN_COLS, "1", {})
        return [Campaign.model_validate(r) for r in rows]

    # pixels
    def save_pixel(self, pixel: Pixel, token_ciphertext: str) -> Pixel:
        """Write a pixel with its encrypted token (the token never leaves the store)."""
        row = pixel.model_dump(exclude={"primary"})
        row.update(
            is_primary=int(pixel.primary),
            event_name=pixel.event_name or "",
            test_event_code=pixel.test_event_code or "",
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

    def list_pixels(self, campaign_id: str) -> list[Pixel]:
        rows = self._live("pixels", _PIXEL_COLS, "campaign_id = {c:String}", {"c": campaign_id})
        return [_pixel(r) for r in rows]

    # workspace settings
    def get_setting(self, key: str) -> str | None:
        rows = select_dicts(
            self._client,
            "SELECT value FROM workspace_settings FINAL WHERE key = {k:String}",
            {"k": key},
        )
        return str(rows[0]["value"]) if rows else None

    def put_setting(self, key: str, value: str) -> None:
        insert_dicts(
            self._client,
            "workspace_settings",
            [{"key": key, "value": value, "version": next_version()}],
        )
