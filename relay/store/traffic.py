"""Clicks and conversions: one logical row per natural ID (ReplacingMergeTree + FINAL)."""

import json
from concurrent.futures import Future
from dataclasses import replace
from datetime import datetime
from typing import Any

from relay.domain.delivery_states import DeliveryState
from relay.domain.events import REVERSAL_EVENTS, is_reversal
from relay.domain.models import Click, Conversion
from relay.store.attempt_log import AttemptFilter, where_clause
from relay.store.delivery_states import LATEST_SQL, STATE_SQL
from relay.store.pool import ClickHouse
from relay.store.rows import select_dicts, utc_now

_CONVERSION_COLS = (
    "conversion_id, click_id, campaign_id, network_id, event_type, payout, currency, txid, "
    "email_sha256, phone_meta_sha256, phone_tiktok_sha256, external_id_sha256, pii_dropped, "
    "is_duplicate, attributed, received_at, refusal"
)

# The delivery states a conversion has only from its run's `delivery_states` record.
_RECORDED_STATES = {
    s.value
    for s in (
        DeliveryState.DELIVERED,
        DeliveryState.PARTIAL,
        DeliveryState.FAILED,
        DeliveryState.NOT_SENDABLE,
    )
}
_CONVERSION_FILTERS = (
    "campaign_id",
    "network_id",
    "click_id",
    "event_type",
    "txid",
    "conversion_id",
)


def _conversion(row: dict[str, Any]) -> Conversion:
    row["is_duplicate"] = bool(row["is_duplicate"])
    row["attributed"] = bool(row["attributed"])
    return Conversion.model_validate(row)


class TrafficStore:
    """Reads and idempotent writes of clicks and conversions."""

    def __init__(self, client: ClickHouse) -> None:
        self._client = client

    def save_click(self, click: Click) -> None:
        row = click.model_dump()
        row["click_ids"] = json.dumps(click.click_ids, sort_keys=True) if click.click_ids else ""
        self._client.insert_batched("clicks", row)

    def get_click(self, click_id: str) -> Click | None:
        rows = select_dicts(
            self._client,
            # A click is written once (a repeated write is an identical copy): no FINAL.
            "SELECT * FROM clicks WHERE click_id = {id:String} LIMIT 1",
            {"id": click_id},
        )
        if not rows:
            return None
        rows[0]["click_ids"] = json.loads(rows[0]["click_ids"] or "{}")
        return Click.model_validate(rows[0])

    def click_campaign(self, click_id: str) -> str | None:
        """The campaign of the click, or None if no such click is recorded: one column of
        one granule (the sort key), for accepting a postback (relay/ingest/accept.py)."""
        rows = select_dicts(
            self._client,
            "SELECT campaign_id FROM clicks WHERE click_id = {id:String} LIMIT 1",
            {"id": click_id},
        )
        return str(rows[0]["campaign_id"]) if rows else None

    def recorded_receipt(self, conversion_id: str) -> datetime | None:
        """When the recorded conversion with this ID was received, or None if unrecorded."""
        rows = select_dicts(
            self._client,
            "SELECT received_at FROM conversions FINAL WHERE conversion_id = {id:String} LIMIT 1",
            {"id": conversion_id},
        )
        return rows[0]["received_at"] if rows else None

    def record_conversion(self, conversion: Conversion, workflow_run_id: str) -> None:
        """Write the conversion row; a repeat of the same row collapses on its ID."""
        self.submit_conversion(conversion, workflow_run_id).result()

    def submit_conversion(self, conversion: Conversion, workflow_run_id: str) -> "Future[None]":
        """Queue the conversion row; the future resolves once it is stored."""
        row = conversion.model_dump()
        row.update(
            is_duplicate=int(conversion.is_duplicate),
            attributed=int(conversion.attributed),
            workflow_run_id=workflow_run_id,
            recorded_at=utc_now(),
        )
        return self._client.submit_batched("conversions", row)

    def get_conversion(self, conversion_id: str) -> Conversion | None:
        rows = select_dicts(
            self._client,
            f"SELECT {_CONVERSION_COLS} FROM conversions FINAL "
            "WHERE conversion_id = {id:String} LIMIT 1",
            {"id": conversion_id},
        )
        return _conversion(rows[0]) if rows else None

    def memory_for(self, conversion: Conversion) -> list[Conversion]:
        """In one query, oldest first: this conversion's recorded row, and the earlier ones
        that may count for its click and event, or for its network, event and txid (the
        memory of dedup beyond the inbox's). What they decide is
        relay/conversions/dedup.py's `clickhouse_memory`."""
        rows = select_dicts(
            self._client,
            # No FINAL (3x cheaper): each conversion's rows are identical copies. One
            # SELECT per lookup, each on its own index (the sort key, the click and txid
            # bloom filters): ORed in one WHERE, no index could skip a granule (31 against
            # 15 ms at 1.2M conversions, chdb). A row found twice is harmless.
            f"SELECT {_CONVERSION_COLS} FROM ("
            "SELECT * FROM conversions WHERE conversion_id = {id:String} "
            "UNION ALL SELECT * FROM conversions WHERE click_id = {c:String} "
            "AND event_type = {e:String} AND is_duplicate = 0 "
            "UNION ALL SELECT * FROM conversions WHERE {t:String} != '' AND txid = {t:String} "
            "AND network_id = {n:String} AND event_type = {e:String}"
            ") ORDER BY received_at LIMIT 100",
            {
                "id": conversion.conversion_id,
                "c": conversion.click_id,
                "e": conversion.event_type,
                "n": conversion.network_id,
                "t": conversion.txid,
            },
        )
        return [_conversion(r) for r in rows]

    def reversal_links(self, conversion: Conversion) -> list[str]:
        """For a reversal, the conversions it reverses; for a conversion, its reversals.

        They match on the click, and on the txid when the reversal gives one, whichever
        arrived first (product.md section 5).
        """
        reversal = is_reversal(conversion.event_type)
        rows = select_dicts(
            self._client,
            "SELECT conversion_id FROM conversions FINAL WHERE click_id = {c:String} "
            "AND has({reversals:Array(String)}, event_type) = {want_reversals:UInt8} "
            "AND is_duplicate = 0 AND refusal = '' AND (txid = {t:String} OR "
            + ("{t:String} = ''" if reversal else "txid = ''")
            + ") ORDER BY received_at",
            {
                "c": conversion.click_id,
                "reversals": sorted(REVERSAL_EVENTS),
                "want_reversals": int(not reversal),
                "t": conversion.txid,
            },
        )
        return [str(r["conversion_id"]) for r in rows]

    def _conversions_source(
        self, where: AttemptFilter, state: str | None
    ) -> tuple[str, dict[str, Any]]:
        """The FROM and WHERE of a conversions list: each with its delivery state."""
        # Conversions have no success flag: that filter applies to attempts only.
        unflagged = replace(where, success=None)
        condition, params = where_clause(unflagged, _CONVERSION_FILTERS, "received_at")
        if state is not None:
            condition += " AND delivery_state = {delivery_state:String}"
            params["delivery_state"] = state
        columns = ", ".join(f"c.{name} AS {name}" for name in _CONVERSION_COLS.split(", "))
        # A state only a run's record gives: only conversions with such a record are read
        # (the outer condition still checks the latest record's).
        recorded = (
            " WHERE c.conversion_id IN (SELECT conversion_id FROM delivery_states "
            "WHERE state = {delivery_state:String})"
            if state in _RECORDED_STATES
            else ""
        )
        source = (
            f"FROM (SELECT {columns}, {STATE_SQL} AS delivery_state FROM conversions AS c "
            f"FINAL LEFT JOIN ({LATEST_SQL}) AS s ON s.conversion_id = c.conversion_id"
            f"{recorded}) WHERE {condition}"
        )
        return source, params

    def search_conversions(
        self, where: AttemptFilter, limit: int, offset: int, state: str | None = None
    ) -> tuple[list[tuple[Conversion, str]], int]:
        """One page of conversions with their delivery states, newest first, and how many
        match in all; `state` keeps those in that delivery state."""
        source, params = self._conversions_source(where, state)
        params.update(limit=limit, offset=offset)
        rows = select_dicts(
            self._client,
            f"SELECT * {source} ORDER BY received_at DESC, conversion_id DESC "
            "LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
            params,
        )
        total = self._client.query(f"SELECT count() {source}", parameters=params).result_rows[0][0]
        return [(_conversion(r), r.pop("delivery_state")) for r in rows], int(total)

    def conversions_before(
        self,
        where: AttemptFilter,
        state: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[tuple[Conversion, str]]:
        """Up to `limit` matching conversions, newest first, that come after `before` (the
        last one of the previous page: received_at, conversion_id) in that order: pages
        that rows written meanwhile cannot shift."""
        source, params = self._conversions_source(where, state)
        params["limit"] = limit
        after = ""
        if before is not None:
            after = (
                "AND (received_at, conversion_id) < "
                "({before_at:DateTime64(3, 'UTC')}, {before_id:String}) "
            )
            params.update(before_at=before[0], before_id=before[1])
        rows = select_dicts(
            self._client,
            f"SELECT * {source} {after}ORDER BY received_at DESC, conversion_id DESC "
            "LIMIT {limit:UInt32}",
            params,
        )
        return [(_conversion(r), r.pop("delivery_state")) for r in rows]
