"""Pixels of a campaign: Meta or TikTok, each with a write-only access token."""

from fastapi import APIRouter, Response

from api.crud import fetch, patched
from api.deps import AdminDep, RuntimeDep
from api.schemas import PixelIn, PixelPatch
from relay.core.errors import NotFound
from relay.core.ids import new_resource_id
from relay.domain.models import Campaign, Pixel
from relay.runtime import Runtime
from relay.store.rows import utc_now

router = APIRouter(
    prefix="/api/campaigns/{campaign_id}/pixels", tags=["pixels"], dependencies=[AdminDep]
)


async def pixel_of(runtime: Runtime, campaign_id: str, pixel_id: str) -> Pixel:
    """The campaign's pixel, or a 404 naming `pixel_id`."""
    found = await runtime.run(runtime.config.get_pixel, pixel_id)
    if found is None or found.campaign_id != campaign_id:
        raise NotFound(f"pixel {pixel_id!r} does not exist in this campaign", "pixel_id")
    return found


async def _save(runtime: Runtime, pixel: Pixel, token: str | None) -> Pixel:
    if token is None:
        sealed = await runtime.run(runtime.config.pixel_token_ciphertext, pixel.id)
        if sealed is None:
            raise NotFound(f"pixel {pixel.id!r} does not exist", "pixel_id")
    else:
        sealed = runtime.keys.encrypt(token, pixel.id)
    return await runtime.run(runtime.config.save_pixel, pixel, sealed)


@router.post("", status_code=201, response_model=Pixel)
async def create_pixel(campaign_id: str, body: PixelIn, runtime: RuntimeDep) -> Pixel:
    """Add a Meta or TikTok pixel; the access token is encrypted and never returned."""
    await fetch(runtime, Campaign, campaign_id, "campaign")
    now = utc_now()
    pixel = Pixel(
        id=new_resource_id("px"),
        campaign_id=campaign_id,
        created_at=now,
        updated_at=now,
        **body.model_dump(exclude={"access_token"}),
    )
    return await _save(runtime, pixel, body.access_token)


@router.get("", response_model=list[Pixel])
async def list_pixels(campaign_id: str, runtime: RuntimeDep) -> list[Pixel]:
    await fetch(runtime, Campaign, campaign_id, "campaign")
    return await runtime.run(runtime.config.list_pixels, campaign_id)


@router.get("/{pixel_id}", response_model=Pixel)
async def get_pixel(campaign_id: str, pixel_id: str, runtime: RuntimeDep) -> Pixel:
    return await pixel_of(runtime, campaign_id, pixel_id)


@router.patch("/{pixel_id}", response_model=Pixel)
async def update_pixel(
    campaign_id: str, pixel_id: str, body: PixelPatch, runtime: RuntimeDep
) -> Pixel:
    """Change a pixel; send `access_token` to rotate the token."""
    current = await pixel_of(runtime, campaign_id, pixel_id)
    updated = patched(current, body, exclude=frozenset({"access_token"}))
    return await _save(runtime, updated, body.access_token)


@router.delete("/{pixel_id}", status_code=204)
async def delete_pixel(campaign_id: str, pixel_id: str, runtime: RuntimeDep) -> Response:
    """Delete a pixel; its fire log rows stay."""
    await pixel_of(runtime, campaign_id, pixel_id)
    await runtime.run(runtime.config.delete, "pixels", pixel_id)
    return Response(status_code=204)
