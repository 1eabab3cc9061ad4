"""Append-only attempt logs: pixel fires and outbound postbacks, one row per attempt."""

from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from relay.domain.models import DeliveryAttempt, PixelFire, PostbackAttempt
from relay.domain.personal_data import erase_request_body
from relay.store.pool import ClickHouse
from relay.store.rows import select_dicts

A = TypeVar("A", bound=DeliveryAttempt)


@dataclass(frozen=True)
class AttemptFilter:
    """Filters of the logs API; None means no filter. `equals` maps column -> value;
    `conversion_network` keeps the attempts of that network's conversions; `any_equals`
    (columns, value) keeps the rows where any of those columns equals the value."""

    equals: dict[str, str] = field(default_factory=dict)
    conversion_network: str | None = None
    any_equals: tuple[tuple[str, ...], str] | None = None
    success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def where_clause(
    where: AttemptFilter, columns: tuple[str, ...], time_column: str
) -> tuple[str, dict[str, Any]]:
    """A bound SQL condition for the filter, and its parameters."""
    clauses = ["1"]
    params: dict[str, Any] = {}
    for column, value in where.equals.items():
        if column not in columns:
            raise ValueError(f"cannot filter on {column}")
        clauses.append(f"{column} = {{{column}:String}}")
        params[column] = value
    if where.any_equals is not None:
        either, value = where.any_equals
        if not set(either) <= set(columns):
            raise ValueError(f"cannot filter on {either}")
        clauses.append("(" + " OR ".join(f"{c} = {{any_equals:String}}" for c in either) + ")")
        params["any_equals"] = value
    if where.conversion_network is not None:
        clauses.append(
            "conversion_id IN (SELECT conversion_id FROM conversions "
            "WHERE network_id = {conversion_network:String})"
        )
        params["conversion_network"] = where.conversion_network
    if where.success is not None:
        clauses.append("success = {success:UInt8}")
        params["success"] = int(where.success)
    if where.since is not None:
        clauses.append(f"{time_column} >= {{since:DateTime64(3, 'UTC')}}")
        params["since"] = where.since
    if where.until is not None:
        clauses.append(f"{time_column} < {{until:DateTime64(3, 'UTC')}}")
        params["until"] = where.until
    return " AND ".join(clauses), params


class AttemptLog(Generic[A]):
    """Writes attempt rows and reads them back, newest first, filtered and paged."""

    def __init__(
        self,
        client: ClickHouse,
        model: type[A],
        table: str,
        time_column: str,
        filter_columns: tuple[str, ...],
        id_column: str,
    ) -> None:
        self.id_column = id_column
        self._client = client
        self._model = model
        self._table = table
        self._time = time_column
        self.filter_columns = filter_columns
        self._cols = ", ".join(model.model_fields)

    def submit(self, attempt: A) -> "Future[None]":
        """Queue the attempt's row; the future resolves once it is stored."""
        row = {k: int(v) if isinstance(v, bool) else v for k, v in attempt.model_dump().items()}
        # No HTTP answer (timeout, refused) is stored as status 0.
        row["http_status"] = row["http_status"] or 0
        row["scheduled_at"] = row["scheduled_at"] or row[self._time]
        # What `request_body` becomes when its personal data expires or is erased.
        row["request_body_erased"] = erase_request_body(str(row["request_body"]))
        return self._client.submit_batched(self._table, row)

    def append(self, attempt: A) -> None:
        self.submit(attempt).result()

    def has(self, attempt: A) -> bool:
        """Whether this attempt's row is stored (by its fire or attempt ID)."""
        found = self._client.query(
            f"SELECT count() FROM {self._table} WHERE conversion_id = {{c:String}} "
            f"AND {self.id_column} = {{id:String}}",
            parameters={"c": attempt.conversion_id, "id": getattr(attempt, self.id_column)},
        )
        return bool(found.result_rows[0][0])

    def _rows(self, sql: str, params: dict[str, Any]) -> list[A]:
        rows = select_dicts(self._client, sql, params)
        for row in rows:
            row["http_status"] = row["http_status"] or None
        return [self._model.model_validate(r) for r in rows]

    def search(self, where: AttemptFilter, limit: int, offset: int) -> tuple[list[A], int]:
        """One page of matching attempts, newest first, and how many match in all."""
        condition, params = where_clause(where, self.filter_columns, self._time)
        params.update(limit=limit, offset=offset)
        items = self._rows(
            f"SELECT {self._cols} FROM {self._table} WHERE {condition} ORDER BY {self._time} "
            "DESC, attempt DESC LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
            params,
        )
        total = self._client.query(
            f"SELECT count() FROM {self._table} WHERE {condition}", parameters=params
        ).result_rows[0][0]
        return items, int(total)

    def for_conversion(self, conversion_id: str) -> list[A]:
        """Every attempt of one conversion, oldest first."""
        return self._rows(
            f"SELECT {self._cols} FROM {self._table} WHERE conversion_id = {{id:String}} "
            f"ORDER BY {self._time}, attempt",
            {"id": conversion_id},
        )


def pixel_fire_log(client: ClickHouse) -> AttemptLog[PixelFire]:
    return AttemptLog(
        client,
        PixelFire,
        "pixel_fires",
        "fired_at",
        ("conversion_id", "campaign_id", "pixel_id", "platform", "event_name"),
        "fire_id",
    )


def postback_log(client: ClickHouse) -> AttemptLog[PostbackAttempt]:
    return AttemptLog(
        client,
        PostbackAttempt,
        "postback_attempts",
        "sent_at",
        ("conversion_id", "campaign_id", "postback_id", "event_type"),
        "attempt_id",
    )
