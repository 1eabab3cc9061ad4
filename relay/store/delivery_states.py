"""The delivery_states table: one row per finished conversion, written by its workflow."""

from concurrent.futures import Future

from relay.domain.delivery_states import DeliveryState
from relay.domain.workflow_io import DeliveryStateInput, SendFinal
from relay.store.pool import ClickHouse
from relay.store.rows import select_dicts, utc_now

# The state of a conversion row `c` joined with its state row `s` (LEFT JOIN: '' if none).
STATE_SQL = (
    f"multiIf(c.is_duplicate = 1, '{DeliveryState.DUPLICATE}', "
    f"c.attributed = 0, '{DeliveryState.UNATTRIBUTED}', "
    f"s.state != '', s.state, '{DeliveryState.PENDING}')"
)
LATEST_SQL = (
    "SELECT conversion_id, argMax(state, finished_at) AS state FROM delivery_states "
    "GROUP BY conversion_id"
)


class DeliveryStates:
    def __init__(self, client: ClickHouse) -> None:
        self._client = client

    def submit(self, record: DeliveryStateInput) -> "Future[None]":
        """Queue the row (group-committed with other writes)."""
        sends = record.sends
        return self._client.submit_batched(
            "delivery_states",
            {
                "conversion_id": record.conversion_id,
                "state": record.state,
                "send_kinds": [s.kind for s in sends],
                "send_targets": [s.target_id for s in sends],
                "send_states": [s.state for s in sends],
                "send_reasons": [s.reason for s in sends],
                "finished_at": utc_now(),
            },
        )

    def get(self, conversion_id: str) -> DeliveryStateInput | None:
        rows = select_dicts(
            self._client,
            "SELECT * FROM delivery_states WHERE conversion_id = {id:String} "
            "ORDER BY finished_at DESC LIMIT 1",
            {"id": conversion_id},
        )
        if not rows:
            return None
        row = rows[0]
        columns = zip(
            row["send_kinds"],
            row["send_targets"],
            row["send_states"],
            row["send_reasons"],
            strict=True,
        )
        return DeliveryStateInput(
            conversion_id=conversion_id,
            state=row["state"],
            sends=[SendFinal(kind=k, target_id=t, state=s, reason=r) for k, t, s, r in columns],
        )
