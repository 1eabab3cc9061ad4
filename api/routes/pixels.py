"""Pixels of a campaign: Meta or TikTok, each with a write-only access token (the
behaviour is api/services/pixels.py's)."""

from fastapi import APIRouter, Response

from api.deps import AdminDep, RuntimeDep
from api.schemas import PixelIn, PixelPatch
from api.services import pixels
from relay.domain.models import Pixel

router = APIRouter(
    prefix="/api/campaigns/{campaign_id}/pixels", tags=["pixels"], dependencies=[AdminDep]
)


@router.post("", status_code=201, response_model=Pixel)
async def create_pixel(campaign_id: str, body: PixelIn, runtime: RuntimeDep) -> Pixel:
    """Add a Meta or TikTok pixel; the access token is encrypted and never returned."""
    return await pixels.create_pixel(runtime, campaign_id, body)


@router.get("", response_model=list[Pixel])
async def list_pixels(campaign_id: str, runtime: RuntimeDep) -> list[Pixel]:
    return await pixels.list_pixels(runtime, campaign_id)


@router.get("/{pixel_id}", response_model=Pixel)
async def get_pixel(campaign_id: str, pixel_id: str, runtime: RuntimeDep) -> Pixel:
    return await pixels.get_pixel(runtime, campaign_id, pixel_id)


@router.patch("/{pixel_id}", response_model=Pixel)
async def update_pixel(
    campaign_id: str, pixel_id: str, body: PixelPatch, runtime: RuntimeDep
) -> Pixel:
    """Change a pixel; send `access_token` to rotate the token."""
    return await pixels.update_pixel(runtime, campaign_id, pixel_id, body)


@router.delete("/{pixel_id}", status_code=204)
async def delete_pixel(campaign_id: str, pixel_id: str, runtime: RuntimeDep) -> Response:
    """Delete a pixel; its fire log rows stay."""
    await pixels.delete_pixel(runtime, campaign_id, pixel_id)
    return Response(status_code=204)
