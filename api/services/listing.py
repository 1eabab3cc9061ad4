"""What every list shares: the time range and paging (`Window`), the page it answers
(`Page`), and times shown in the workspace's timezone while the store keeps UTC."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Generic, TypeVar
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel

from relay.store.attempt_log import AttemptFilter

M = TypeVar("M", bound=BaseModel)

# ClickHouse's DateTime64 holds 1900-01-01 to 2299-12-31; a day's margin either side
# leaves room for any UTC offset, including the workspace's for a naive time.
_EARLIEST, _LATEST = datetime(1900, 1, 2), datetime(2299, 12, 30)


def _storable(value: datetime) -> datetime:
    if not _EARLIEST <= value.replace(tzinfo=None) <= _LATEST:
        raise ValueError(f"must be between {_EARLIEST:%Y-%m-%d} and {_LATEST:%Y-%m-%d}")
    return value


Time = Annotated[datetime, AfterValidator(_storable)]


class Page(BaseModel, Generic[M]):
    items: list[M]
    total: int
    limit: int
    offset: int


def aware(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A naive time read as the workspace's (`zone`); an aware one or None as it is."""
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


@dataclass(frozen=True)
class Window:
    """Paging and the time range shared by every list; naive times are workspace-local.
    `success` keeps the delivered (True) or failed (False) attempts only."""

    success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0

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
            since=aware(self.since, zone),
            until=aware(self.until, zone),
        )
