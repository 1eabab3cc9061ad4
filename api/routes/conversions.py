"""Reading conversions, with their delivery states and every attempt of their sends, in
the workspace's timezone (the behaviour is api/services/conversions.py's)."""

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminDep, Bounded, RuntimeDep, WindowDep
from api.services import conversions
from api.services.conversions import ConversionOut, ConversionQuery, ConversionSummary
from api.services.listing import Page
from relay.domain.delivery_states import DeliveryState

router = APIRouter(prefix="/api", tags=["reading"], dependencies=[AdminDep])

FIND = "a conversion, click or transaction ID: the conversions with any of them equal to it"


@router.get("/conversions/{conversion_id}", response_model=ConversionOut)
async def get_conversion(conversion_id: str, runtime: RuntimeDep) -> ConversionOut:
    """One conversion with every attempt of its pixel fires and outbound postbacks."""
    return await conversions.get_conversion(runtime, conversion_id)


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
    query = ConversionQuery(
        campaign_id, network_id, click_id, event_type, delivery_state, txid, find
    )
    return await conversions.list_conversions(runtime, window, query)
