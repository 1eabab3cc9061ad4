"""Every destination Relay sends to. An ad platform is one entry of `PLATFORMS`, keyed by
its `Platform` (the value stored with each pixel); outbound postbacks are `POSTBACKS`."""

from collections.abc import Mapping

from relay.destinations import meta, postback, tiktok
from relay.destinations.base import ClickIdentifier, Destination
from relay.domain.models import Click, OutboundPostback, Pixel, Platform

PLATFORMS: Mapping[Platform, Destination[Pixel]] = {
    Platform.META: meta.DESTINATION,
    Platform.TIKTOK: tiktok.DESTINATION,
}
POSTBACKS: Destination[OutboundPostback] = postback.DESTINATION


def platform(kind: Platform | str) -> Destination[Pixel]:
    """The destination of a pixel's platform."""
    return PLATFORMS[Platform(kind)]


def default_event_name(pixel: Pixel, event_type: str) -> str:
    """The pixel's own event name, else its platform's default for the event type."""
    return pixel.event_name or platform(pixel.platform).default_event_name(event_type, pixel)


def setting_problem(pixel: Pixel) -> tuple[str, str] | None:
    """What is wrong with a pixel's settings for its platform, as (the parameter, a
    message), or None: an option the platform does not have, a required setting missing,
    a value that is not one of a choice's. A setting named like a `Pixel` attribute is
    stored there; any other in `options`."""
    destination = platform(pixel.platform)
    fields = {f.name: f for f in destination.fields}
    own = [f.name for f in destination.fields if f.name not in Pixel.model_fields]
    for key in pixel.options:
        if key not in own:
            known = ", ".join(own) or "none"
            return (
                f"options.{key}",
                f"{destination.label} has no setting {key!r} (its options: {known})",
            )
    for name, field in fields.items():
        stored = name in Pixel.model_fields
        param = name if stored else f"options.{name}"
        value = getattr(pixel, name) if stored else pixel.options.get(name)
        value = "" if value is None else str(value)
        if field.required and not value.strip():
            return param, f"{field.label} is required for {destination.label} pixels"
        if field.choices and value and value not in {v for v, _ in field.choices}:
            allowed = ", ".join(v for v, _ in field.choices)
            return param, f"{field.label} must be one of {allowed}"
    return None


def stored_click_ids() -> list[ClickIdentifier]:
    """The click IDs the landing click keeps in `Click.click_ids`: every platform's that has
    no `Click` field of its own (fbclid and ttclid have theirs)."""
    return [
        identifier
        for destination in PLATFORMS.values()
        for identifier in destination.click_ids
        if identifier.param not in Click.model_fields
    ]
