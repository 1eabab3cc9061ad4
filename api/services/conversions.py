"""Conversions as the API and the console read them: one with every attempt of its sends,
or a filtered page of them with their delivery states, times in the workspace's zone."""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pydantic import Field

from api.delivery_view import PixelFireOut, PostbackAttemptOut, SendOut, pixel_sends, postback_sends
from api.services.listing import Page, Window, in_zone
from api.services.settings import workspace_zone
from relay.core.errors import NotFound
from relay.domain.delivery_states import DeliveryState
from relay.domain.events import is_reversal
from relay.domain.models import Conversion
from relay.domain.workflow_io import DeliveryStateInput
from relay.runtime import Runtime
from relay.store.attempt_log import AttemptFilter
from relay.store.delivery_states import DeliveryStates

# The columns the list's `find` looks in.
FIND_COLUMNS = ("conversion_id", "click_id", "txid")


class ConversionSummary(Conversion):
    delivery_state: DeliveryState  # pending until its workflow has finished every send


class ConversionOut(ConversionSummary):
    reversed: bool = False
    reversed_by: list[str] = Field(default_factory=list)
    reverses: list[str] = Field(default_factory=list)
    sends: list[SendOut]  # each pixel fire and outbound postback, and how it stands
    fires: list[PixelFireOut]  # every attempt, oldest first
    postbacks: list[PostbackAttemptOut]


@dataclass(frozen=True)
class ConversionQuery:
    """The conversions list's filters besides its time range and paging."""

    campaign_id: str | None = None
    network_id: str | None = None
    click_id: str | None = None
    event_type: str | None = None
    delivery_state: DeliveryState | None = None
    txid: str | None = None
    find: str | None = None

    def where(self, window: Window, zone: ZoneInfo) -> tuple[AttemptFilter, str | None]:
        """The store's filter, and the delivery state to keep (None: any)."""
        found = self.find.strip() if self.find else ""
        where = window.filter(
            zone,
            any_equals=(FIND_COLUMNS, found) if found else None,
            campaign_id=self.campaign_id,
            network_id=self.network_id,
            click_id=self.click_id,
            event_type=self.event_type,
            txid=self.txid,
        )
        return where, self.delivery_state.value if self.delivery_state else None


async def get_conversion(runtime: Runtime, conversion_id: str) -> ConversionOut:
    """One conversion with every attempt of its pixel fires and outbound postbacks, and
    the conversions it reverses or that reverse it; a 404 naming `conversion_id` if it is
    not recorded."""
    conversion = await runtime.run(runtime.traffic.get_conversion, conversion_id)
    if conversion is None:
        raise NotFound(f"conversion {conversion_id!r} is not recorded", "conversion_id")
    fires = await runtime.run(runtime.fire_log.for_conversion, conversion_id)
    postbacks = await runtime.run(runtime.postback_log.for_conversion, conversion_id)
    links = await runtime.run(runtime.traffic.reversal_links, conversion)
    record = await runtime.run(DeliveryStates(runtime.clickhouse).get, conversion_id)
    zone = await workspace_zone(runtime)
    reversal = is_reversal(conversion.event_type)
    fires_out, pixel_sent = pixel_sends([in_zone(f, zone) for f in fires], record)
    postbacks_out, postback_sent = postback_sends([in_zone(p, zone) for p in postbacks], record)
    return ConversionOut(
        **in_zone(conversion, zone).model_dump(),
        delivery_state=conversion_state_of(conversion, record),
        reversed=bool(links) and not reversal,
        reversed_by=[] if reversal else links,
        reverses=links if reversal else [],
        sends=pixel_sent + postback_sent,
        fires=fires_out,
        postbacks=postbacks_out,
    )


def conversion_state_of(conversion: Conversion, record: DeliveryStateInput | None) -> DeliveryState:
    """As the list computes it in SQL (relay/store/delivery_states.py STATE_SQL)."""
    if conversion.is_duplicate:
        return DeliveryState.DUPLICATE
    if not conversion.attributed:
        return DeliveryState.UNATTRIBUTED
    return DeliveryState(record.state) if record else DeliveryState.PENDING


async def list_conversions(
    runtime: Runtime, window: Window, query: ConversionQuery
) -> Page[ConversionSummary]:
    """The conversions `query` and `window` take, with their delivery states, newest
    first (`window.success` is ignored: conversions have delivery states instead)."""
    zone = await workspace_zone(runtime)
    where, state = query.where(window, zone)
    items, total = await runtime.run(
        runtime.traffic.search_conversions, where, window.limit, window.offset, state
    )
    return Page[ConversionSummary](
        items=[summary(c, s, zone) for c, s in items],
        total=total,
        limit=window.limit,
        offset=window.offset,
    )


def summary(conversion: Conversion, state: str, zone: ZoneInfo) -> ConversionSummary:
    """A listed conversion, its times in the workspace's zone."""
    return ConversionSummary(**in_zone(conversion, zone).model_dump(), delivery_state=state)
