"""The conversions a bulk redelivery takes, page by page in a stable order."""

from datetime import datetime
from typing import Any

from relay.domain.redelivery import RedeliveryFilter
from relay.store.delivery_states import LATEST_SQL
from relay.store.pool import ClickHouse
from relay.store.rows import select_dicts

# A page ends at a (received_at, conversion_id) cursor; the next starts after it.
Cursor = tuple[datetime, str]
_IDS = ", ".join(
    f"c.{name} AS {name}"
    for name in (
        "conversion_id",
        "received_at",
        "click_id",
        "campaign_id",
        "network_id",
        "event_type",
    )
)


def _source(where: RedeliveryFilter) -> tuple[str, dict[str, Any]]:
    clauses = [
        "c.is_duplicate = 0",
        "c.attributed = 1",
        "s.state IN {states:Array(String)}",
    ]
    params: dict[str, Any] = {"states": [str(s) for s in where.states]}
    for column in ("campaign_id", "network_id"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"c.{column} = {{{column}:String}}")
            params[column] = value
    # Conversions with a fire to that pixel, or on that platform (a send's kind and target
    # are in delivery_states; its platform only in the attempt log).
    if where.pixel_id is not None:
        clauses.append(
            "c.conversion_id IN (SELECT conversion_id FROM pixel_fires "
            "WHERE pixel_id = {pixel_id:String})"
        )
        params["pixel_id"] = where.pixel_id
    if where.platform is not None:
        clauses.append(
            "c.conversion_id IN (SELECT conversion_id FROM pixel_fires "
            "WHERE platform = {platform:String})"
        )
        params["platform"] = where.platform.value
    if where.since is not None:
        clauses.append("c.received_at >= {since:DateTime64(3, 'UTC')}")
        params["since"] = where.since
    if where.until is not None:
        clauses.append("c.received_at < {until:DateTime64(3, 'UTC')}")
        params["until"] = where.until
    source = (
        f"FROM conversions AS c FINAL INNER JOIN ({LATEST_SQL}) AS s "
        f"ON s.conversion_id = c.conversion_id WHERE {' AND '.join(clauses)}"
    )
    return source, params


class Redeliveries:
    def __init__(self, client: ClickHouse) -> None:
        self._client = client

    def count(self, where: RedeliveryFilter) -> int:
        source, params = _source(where)
        result = self._client.query(f"SELECT count() {source}", parameters=params)
        return int(result.result_rows[0][0])

    def page(
        self, where: RedeliveryFilter, after: Cursor | None, limit: int
    ) -> list[dict[str, Any]]:
        """Up to `limit` conversions, oldest first: their IDs (conversion, click, campaign,
        network, event type) and when they were received."""
        source, params = _source(where)
        if after is not None:
            source += (
                " AND (c.received_at > {after_at:DateTime64(3, 'UTC')} OR "
                "(c.received_at = {after_at:DateTime64(3, 'UTC')} AND "
                "c.conversion_id > {after_id:String}))"
            )
            params.update(after_at=after[0], after_id=after[1])
        params["limit"] = limit
        return select_dicts(
            self._client,
            f"SELECT {_IDS} {source} ORDER BY c.received_at, c.conversion_id "
            "LIMIT {limit:UInt32}",
            params,
        )
