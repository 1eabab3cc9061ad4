"""Erasing one click's personal data on request (a visitor's erasure request)."""

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AdminDep, RuntimeDep
from relay.core.errors import NotFound
from relay.store.erasure import erase_click

router = APIRouter(prefix="/api", tags=["clicks"], dependencies=[AdminDep])


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


@router.delete("/clicks/{click_id}/personal-data", response_model=ErasureOut)
async def erase_personal_data(click_id: str, runtime: RuntimeDep) -> ErasureOut:
    """Blank the personal data stored under a click: its IP, user agent, landing and
    referrer URLs, click IDs and cookies, region, city, ZIP and external ID; the hashed
    email, phone and external ID of its conversions; the visitor's data in the requests
    its pixel fires and outbound postbacks logged. Rows stay, so dedup, attribution and
    the delivery history are unchanged. Idempotent: a repeat answers what it erased,
    nothing. 404 when nothing is stored under the click ID."""
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
