"""Erasing one click's personal data on request (a visitor's erasure request)."""

from pydantic import BaseModel, Field

from relay.core.errors import NotFound
from relay.runtime import Runtime
from relay.store.erasure import erase_click


class ErasedOut(BaseModel):
    click: list[str] = Field(
        description="The click's fields that held a value, now blank.",
        examples=[["ip", "user_agent", "fbclid"]],
    )
    conversions: int = Field(
        description="Conversions of the click whose hashed identifiers were erased."
    )
    pixel_fires: int = Field(
        description="Pixel fire rows whose stored request had the visitor's data."
    )
    postback_attempts: int = Field(
        description="Outbound postback rows whose URL or body had the visitor's data."
    )


class ErasureOut(BaseModel):
    click_id: str
    erased: ErasedOut


async def erase_personal_data(runtime: Runtime, click_id: str) -> ErasureOut:
    """Blank the personal data stored under a click and its conversions' and attempts'
    rows (the rows stay); a 404 naming `click_id` when nothing is stored under it."""
    erasure = await runtime.run(erase_click, runtime.clickhouse, click_id)
    if erasure is None:
        raise NotFound(f"no click or conversion has click ID {click_id!r}", "click_id")
    # This process's sends read the click again, now without its personal data.
    runtime.clicks.forget(click_id)
    return ErasureOut(
        click_id=click_id,
        erased=ErasedOut(
            click=erasure.click_fields,
            conversions=erasure.conversions,
            pixel_fires=erasure.pixel_fires,
            postback_attempts=erasure.postback_attempts,
        ),
    )
