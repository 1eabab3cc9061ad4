"""The last step of a conversion's workflow: record how its delivery ended."""

from temporalio import activity

from activities.attempts import store_submit
from relay.domain.workflow_io import DeliveryStateInput
from relay.store.delivery_states import DeliveryStates


class StateActivities:
    def __init__(self, states: DeliveryStates) -> None:
        self._states = states

    @activity.defn
    async def record_delivery_state(self, input: DeliveryStateInput) -> None:
        """One row, group-committed with the attempt rows (a local activity: no task
        through the Temporal server)."""
        await store_submit(lambda: self._states.submit(input))
