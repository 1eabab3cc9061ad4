"""Shared steps of the services' create/read/update/delete of configuration records."""

import asyncio
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from relay.core.errors import InvalidField, NotFound
from relay.runtime import Runtime
from relay.store.rows import utc_now

M = TypeVar("M", bound=BaseModel)


async def fetch(runtime: Runtime, model: type[M], record_id: str, what: str) -> M:
    """The live record, or a 404 naming `{what}_id`."""
    found = await asyncio.to_thread(runtime.config.get, model, record_id)
    if found is None:
        raise NotFound(f"{what} {record_id!r} does not exist", f"{what}_id")
    return found


async def fetch_in_campaign(
    runtime: Runtime, model: type[M], campaign_id: str, record_id: str, what: str
) -> M:
    """Like `fetch`, but a record of another campaign is as good as missing."""
    found = await fetch(runtime, model, record_id, what)
    if getattr(found, "campaign_id", None) != campaign_id:
        raise NotFound(f"{what} {record_id!r} does not exist in this campaign", f"{what}_id")
    return found


def patched(
    current: M,
    patch: BaseModel,
    exclude: frozenset[str] = frozenset(),
    changes: Mapping[str, Any] | None = None,
) -> M:
    """`current` with the fields the PATCH body set (but `exclude`), and `updated_at` now.

    An explicit null for a field that cannot be empty is a 422 naming that field."""
    given = patch.model_dump(exclude_unset=True, exclude=set(exclude))
    fields = {**current.model_dump(), **given, **(changes or {}), "updated_at": utc_now()}
    try:
        return type(current).model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidField(f"{field}: {first['msg']}", field) from None


async def save(runtime: Runtime, record: M) -> M:
    return await asyncio.to_thread(runtime.config.save, record)


async def remove(runtime: Runtime, table: str, record_id: str) -> None:
    await asyncio.to_thread(runtime.config.delete, table, record_id)
