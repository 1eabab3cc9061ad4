"""The admin API: networks, campaigns, pixels and workspace settings (bearer token)."""

import asyncio
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Response

from api.deps import AdminDep, RuntimeDep
from api.schemas import (
    CampaignIn,
    CampaignPatch,
    NetworkIn,
    NetworkPatch,
    PixelIn,
    PixelPatch,
    SettingsIn,
)
from relay.errors import BadParameter, NotFound
from relay.ids import new_resource_id, new_secret
from relay.models import Campaign, Network, Pixel
from relay.runtime import Runtime
from relay.store.rows import utc_now

router = APIRouter(prefix="/api", tags=["admin"], dependencies=[AdminDep])


T = TypeVar("T")


def _found(value: T | None, what: str, ident: str) -> T:
    if value is None:
        raise NotFound(f"{what} {ident!r} does not exist", f"{what}_id")
    return value


def _changed(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return {**current, **patch, "updated_at": utc_now()}


@router.post("/networks", status_code=201, response_model=Network)
async def create_network(body: NetworkIn, runtime: RuntimeDep) -> Network:
    """Create a network; the answer holds its generated `postback_key`."""
    now = utc_now()
    network = Network(
        id=new_resource_id("net"),
        name=body.name,
        postback_key=new_secret(),
        created_at=now,
        updated_at=now,
    )
    return await asyncio.to_thread(runtime.config.save_network, network)


@router.get("/networks", response_model=list[Network])
async def list_networks(runtime: RuntimeDep) -> list[Network]:
    return await asyncio.to_thread(runtime.config.list_networks)


@router.get("/networks/{network_id}", response_model=Network)
async def get_network(network_id: str, runtime: RuntimeDep) -> Network:
    found = await asyncio.to_thread(runtime.config.get_network, network_id)
    return _found(found, "network", network_id)


@router.patch("/networks/{network_id}", response_model=Network)
async def update_network(network_id: str, body: NetworkPatch, runtime: RuntimeDep) -> Network:
    current = await get_network(network_id, runtime)
    updated = Network.model_validate(
        _changed(current.model_dump(), body.model_dump(exclude_unset=True))
    )
    return await asyncio.to_thread(runtime.config.save_network, updated)


@router.post("/campaigns", status_code=201, response_model=Campaign)
async def create_campaign(body: CampaignIn, runtime: RuntimeDep) -> Campaign:
    """Create a campaign; `offer_url` may carry the `{click_id}` macro."""
    now = utc_now()
    campaign = Campaign(
        id=new_resource_id("cmp"), created_at=now, updated_at=now, **body.model_dump()
    )
    return await asyncio.to_thread(runtime.config.save_campaign, campaign)


@router.get("/campaigns", response_model=list[Campaign])
async def list_campaigns(runtime: RuntimeDep) -> list[Campaign]:
    return await asyncio.to_thread(runtime.config.list_campaigns)


@router.get("/campaigns/{campaign_id}", response_model=Campaign)
async def get_campaign(campaign_id: str, runtime: RuntimeDep) -> Campaign:
    found = await asyncio.to_thread(runtime.config.get_campaign, campaign_id)
    return _found(found, "campaign", campaign_id)


@router.patch("/campaigns/{campaign_id}", response_model=Campaign)
async def update_campaign(campaign_id: str, body: CampaignPatch, runtime: RuntimeDep) -> Campaign:
    current = await get_campaign(campaign_id, runtime)
    updated = Campaign.model_validate(
        _changed(current.model_dump(), body.model_dump(exclude_unset=True))
    )
    return await asyncio.to_thread(runtime.config.save_campaign, updated)


async def _save_pixel(runtime: Runtime, pixel: Pixel, token: str | None) -> Pixel:
    if token is None:
        sealed = await asyncio.to_thread(runtime.config.pixel_token_ciphertext, pixel.id)
        token_ciphertext = _found(sealed, "pixel", pixel.id)
    else:
        token_ciphertext = runtime.keys.encrypt(token, pixel.id)
    return await asyncio.to_thread(runtime.config.save_pixel, pixel, token_ciphertext)


@router.post("/campaigns/{campaign_id}/pixels", status_code=201, response_model=Pixel)
async def create_pixel(campaign_id: str, body: PixelIn, runtime: RuntimeDep) -> Pixel:
    """Add a Meta or TikTok pixel; the access token is write-only."""
    await get_campaign(campaign_id, runtime)
    now = utc_now()
    fields = body.model_dump(exclude={"access_token"})
    pixel = Pixel(
        id=new_resource_id("px"), campaign_id=campaign_id, created_at=now, updated_at=now, **fields
    )
    return await _save_pixel(runtime, pixel, body.access_token)


@router.get("/campaigns/{campaign_id}/pixels", response_model=list[Pixel])
async def list_pixels(campaign_id: str, runtime: RuntimeDep) -> list[Pixel]:
    await get_campaign(campaign_id, runtime)
    return await asyncio.to_thread(runtime.config.list_pixels, campaign_id)


@router.get("/campaigns/{campaign_id}/pixels/{pixel_id}", response_model=Pixel)
async def get_pixel(campaign_id: str, pixel_id: str, runtime: RuntimeDep) -> Pixel:
    found = await asyncio.to_thread(runtime.config.get_pixel, pixel_id)
    if found is not None and found.campaign_id != campaign_id:
        found = None
    return _found(found, "pixel", pixel_id)


@router.patch("/campaigns/{campaign_id}/pixels/{pixel_id}", response_model=Pixel)
async def update_pixel(
    campaign_id: str, pixel_id: str, body: PixelPatch, runtime: RuntimeDep
) -> Pixel:
    current = await get_pixel(campaign_id, pixel_id, runtime)
    patch = body.model_dump(exclude_unset=True, exclude={"access_token"})
    updated = Pixel.model_validate(_changed(current.model_dump(), patch))
    return await _save_pixel(runtime, updated, body.access_token)


@router.delete("/campaigns/{campaign_id}/pixels/{pixel_id}", status_code=204)
async def delete_pixel(campaign_id: str, pixel_id: str, runtime: RuntimeDep) -> Response:
    """Delete a pixel; its fire log rows stay."""
    await get_pixel(campaign_id, pixel_id, runtime)
    await asyncio.to_thread(runtime.config.delete, "pixels", pixel_id)
    return Response(status_code=204)


@router.get("/settings")
async def get_settings(runtime: RuntimeDep) -> dict[str, str]:
    timezone = await asyncio.to_thread(runtime.config.get_setting, "timezone")
    return {"timezone": timezone or "UTC"}


@router.put("/settings")
async def put_settings(body: SettingsIn, runtime: RuntimeDep) -> dict[str, str]:
    """Set the workspace timezone (an IANA name); every time the API returns uses it."""
    try:
        ZoneInfo(body.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadParameter(f"unknown IANA timezone {body.timezone!r}", "timezone") from None
    await asyncio.to_thread(runtime.config.put_setting, "timezone", body.timezone)
    return {"timezone": body.timezone}
