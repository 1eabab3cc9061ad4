"""Shared steps of the admin API's create/read/update/delete routes."""

import asyncio
from typing import Any, TypeVar

from pydantic import BaseModel

from relay.errors import NotFound
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


def patched(current: M, patch: BaseModel, **changes: Any) -> M:
    """`current` with the fields the PATCH body set, and `updated_at` now."""
    fields = {**current.model_dump(), **patch.model_dump(exclude_unset=True), **changes}
    return type(current).model_validate({**fields, "updated_at": utc_now()})


async def save(runtime: Runtime, record: M) -> M:
    return await asyncio.to_thread(runtime.config.save, record)


async def remove(runtime: Runtime, table: str, record_id: str) -> None:
    await asyncio.to_thread(runtime.config.delete, table, record_id)
