"""Erasing one click's personal data on request (a visitor's erasure request; the
behaviour is api/services/personal_data.py's)."""

from fastapi import APIRouter

from api.deps import AdminDep, RuntimeDep
from api.services import personal_data
from api.services.personal_data import ErasureOut

router = APIRouter(prefix="/api", tags=["clicks"], dependencies=[AdminDep])


@router.delete("/clicks/{click_id}/personal-data", response_model=ErasureOut)
async def erase_personal_data(click_id: str, runtime: RuntimeDep) -> ErasureOut:
    """Blank the personal data stored under a click: its IP, user agent, landing and
    referrer URLs, click IDs and cookies, region, city, ZIP and external ID; the hashed
    email, phone and external ID of its conversions; the visitor's data in the requests
    its pixel fires and outbound postbacks logged. Rows stay, so dedup, attribution and
    the delivery history are unchanged. Idempotent: a repeat answers what it erased,
    nothing. 404 when nothing is stored under the click ID."""
    return await personal_data.erase_personal_data(runtime, click_id)
