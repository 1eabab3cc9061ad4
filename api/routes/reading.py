"""Reading conversions and the attempt logs, in the workspace's timezone."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Generic, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator, BaseModel, Field

from api.delivery_view import PixelFireOut, PostbackAttemptOut, SendOut, pixel_sends, postback_sends
from api.deps import AdminDep, RuntimeDep
from relay.core.errors import NotFound
from relay.domain.delivery_states import DeliveryState
from relay.domain.events import is_reversal
from relay.domain.models import Conversion, PixelFire, Platform, PostbackAttempt
from relay.domain.workflow_io import DeliveryStateInput
from relay.runtime import Runtime
from relay.store.attempt_log import AttemptFilter
from relay.store.delivery_states import DeliveryStates

router = APIRouter(prefix="/api", tags=["reading"], dependencies=[AdminDep])

M = TypeVar("M", bound=BaseModel)


class ConversionSummary(Conversion):
    delivery_state: DeliveryState  # pending until its workflow has finished every send


class ConversionOut(ConversionSummary):
    reversed: bool = False
    reversed_by: list[str] = Field(default_factory=list)
    reverses: list[str] = Field(default_factory=list)
    sends: list[SendOut]  # each pixel fire and outbound postback, and how it stands
    fires: list[PixelFireOut]  # every attempt, oldest first
    postbacks: list[PostbackAttemptOut]


class Page(BaseModel, Generic[M]):
    items: list[M]
    total: int
    limit: int
    offset: int


# ClickHouse's DateTime64 holds 1900-01-01 to 2299-12-31; a day's margin either side
# leaves room for any UTC offset, including the workspace's for a naive time.
_EARLIEST, _LATEST = datetime(1900, 1, 2), datetime(2299, 12, 30)


def _storable(value: datetime) -> datetime:
    if not _EARLIEST <= value.replace(tzinfo=None) <= _LATEST:
        raise ValueError(f"must be between {_EARLIEST:%Y-%m-%d} and {_LATEST:%Y-%m-%d}")
    return value


Time = Annotated[datetime, AfterValidator(_storable)]


class Window:
    """Paging and the time range shared by every list; naive times are workspace-local."""

    def __init__(
        self,
        success: bool | None = None,
        since: Annotated[Time | None, Query(description="ISO 8601, inclusive")] = None,
        until: Annotated[Time | None, Query(description="ISO 8601, exclusive")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> None:
        self.success, self.since, self.until = success, since, until
        self.limit, self.offset = limit, offset

    def filter(
        self,
        zone: ZoneInfo,
        conversion_network: str | None = None,
        any_equals: tuple[tuple[str, ...], str] | None = None,
        **equals: str | None,
    ) -> AttemptFilter:
        """`equals` are the list's own columns; `conversion_network` keeps the attempts of
        that network's conversions (attempt logs have no network column); `any_equals`
        keeps the rows where any of the columns equals the value."""
        return AttemptFilter(
            equals={k: v for k, v in equals.items() if v is not None},
            conversion_network=conversion_network,
            any_equals=any_equals,
            success=self.success,
            since=_aware(self.since, zone),
            until=_aware(self.until, zone),
        )


WindowDep = Annotated[Window, Depends()]


async def workspace_zone(runtime: Runtime) -> ZoneInfo:
    name = await runtime.run(runtime.config.get_setting, "timezone")
    return ZoneInfo(name or "UTC")


def _aware(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=zone)


def in_zone(model: M, zone: ZoneInfo) -> M:
    """A copy whose datetimes are shown in the workspace timezone (storage stays UTC)."""
    changes = {
        name: value.astimezone(zone)
        for name, value in model.__dict__.items()
        if isinstance(value, datetime)
    }
    return model.model_copy(update=changes)


@router.get("/conversions/{conversion_id}", response_model=ConversionOut)
async def get_conversion(conversion_id: str, runtime: RuntimeDep) -> ConversionOut:
    """One conversion with every attempt of its pixel fires and outbound postbacks."""
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


FIND_COLUMNS = ("conversion_id", "click_id", "txid")
FIND = "a conversion, click or transaction ID: the conversions with any of them equal to it"
Bounded = Annotated[str | None, Query(max_length=200)]


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


@router.get("/conversions", response_model=Page[ConversionSummary])
async def list_conversions(
    runtime: RuntimeDep,
    window: WindowDep,
    campaign_id: str | None = None,
    network_id: str | None = None,
    click_id: str | None = None,
    event_type: str | None = None,
    delivery_state: DeliveryState | None = None,
    txid: Bounded = None,
    find: Annotated[str | None, Query(description=FIND, max_length=200)] = None,
) -> Page[ConversionSummary]:
    """Conversions with their delivery states, newest first; `success` is ignored here."""
    zone = await workspace_zone(runtime)
    query = ConversionQuery(
        campaign_id, network_id, click_id, event_type, delivery_state, txid, find
    )
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


@router.get("/pixel-logs", response_model=Page[PixelFire])
async def pixel_logs(
    runtime: RuntimeDep,
    window: WindowDep,
    conversion_id: str | None = None,
    campaign_id: str | None = None,
    pixel_id: str | None = None,
    platform: Platform | None = None,
    network_id: Bounded = None,
    event_name: Annotated[
        str | None, Query(description="the event name sent, e.g. Purchase", max_length=200)
    ] = None,
) -> Page[PixelFire]:
    """Pixel delivery attempts, newest first, filtered and paged."""
    zone = await workspace_zone(runtime)
    where = window.filter(
        zone,
        conversion_network=network_id,
        conversion_id=conversion_id,
        campaign_id=campaign_id,
        pixel_id=pixel_id,
        platform=platform.value if platform else None,
        event_name=event_name,
    )
    items, total = await runtime.run(runtime.fire_log.search, where, window.limit, window.offset)
    return Page[PixelFire](
        items=[in_zone(f, zone) for f in items],
        total=total,
        limit=window.limit,
        offset=window.offset,
    )


@router.get("/postback-logs", response_model=Page[PostbackAttempt])
async def postback_logs(
    runtime: RuntimeDep,
    window: WindowDep,
    conversion_id: str | None = None,
    campaign_id: str | None = None,
    postback_id: str | None = None,
    network_id: Bounded = None,
    event_type: Annotated[
        str | None, Query(description="the conversion's event, e.g. sale", max_length=200)
    ] = None,
) -> Page[PostbackAttempt]:
    """Outbound postback attempts, newest first, filtered and paged."""
    zone = await workspace_zone(runtime)
    where = window.filter(
        zone,
        conversion_network=network_id,
        conversion_id=conversion_id,
        campaign_id=campaign_id,
        postback_id=postback_id,
        event_type=event_type,
    )
    log = runtime.postback_log
    items, total = await runtime.run(log.search, where, window.limit, window.offset)
    return Page[PostbackAttempt](
        items=[in_zone(p, zone) for p in items],
        total=total,
        limit=window.limit,
        offset=window.offset,
    )
