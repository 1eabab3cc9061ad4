"""Pixels of a campaign, one per ad platform account (relay/destinations/registry.py), each
with a write-only access token stored encrypted under the key ring, and the platform's own
settings checked against its description."""

from api.crud import fetch, patched
from api.schemas import PixelIn, PixelPatch
from relay.core.errors import InvalidField, NotFound
from relay.core.ids import new_resource_id
from relay.destinations.registry import setting_problem
from relay.domain.models import Campaign, Pixel
from relay.runtime import Runtime
from relay.store.rows import utc_now


async def get_pixel(runtime: Runtime, campaign_id: str, pixel_id: str) -> Pixel:
    """The campaign's pixel, or a 404 naming `pixel_id`."""
    found = await runtime.run(runtime.config.get_pixel, pixel_id)
    if found is None or found.campaign_id != campaign_id:
        raise NotFound(f"pixel {pixel_id!r} does not exist in this campaign", "pixel_id")
    return found


async def _save(runtime: Runtime, pixel: Pixel, token: str | None) -> Pixel:
    """Save the pixel with `token` encrypted, or (None) with the token it has; settings
    its platform does not take are a 422 naming the setting."""
    problem = setting_problem(pixel)
    if problem is not None:
        raise InvalidField(problem[1], problem[0])
    if token is None:
        sealed = await runtime.run(runtime.config.pixel_token_ciphertext, pixel.id)
        if sealed is None:
            raise NotFound(f"pixel {pixel.id!r} does not exist", "pixel_id")
    else:
        sealed = runtime.keys.encrypt(token, pixel.id)
    return await runtime.run(runtime.config.save_pixel, pixel, sealed)


async def create_pixel(runtime: Runtime, campaign_id: str, body: PixelIn) -> Pixel:
    """A new pixel of the campaign (a 404 if there is none); its token is encrypted."""
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


async def list_pixels(runtime: Runtime, campaign_id: str) -> list[Pixel]:
    """The campaign's pixels; a 404 naming `campaign_id` if there is no such campaign."""
    await fetch(runtime, Campaign, campaign_id, "campaign")
    return await runtime.run(runtime.config.list_pixels, campaign_id)


async def update_pixel(
    runtime: Runtime, campaign_id: str, pixel_id: str, body: PixelPatch
) -> Pixel:
    """The pixel with the fields `body` sets changed; a token given replaces the stored one."""
    current = await get_pixel(runtime, campaign_id, pixel_id)
    updated = patched(current, body, exclude=frozenset({"access_token"}))
    return await _save(runtime, updated, body.access_token)


async def delete_pixel(runtime: Runtime, campaign_id: str, pixel_id: str) -> None:
    """Delete the campaign's pixel (a 404 if there is none); its fire log rows stay."""
    await get_pixel(runtime, campaign_id, pixel_id)
    await runtime.run(runtime.config.delete, "pixels", pixel_id)
