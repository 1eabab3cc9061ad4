"""Planning: which pixels and outbound postbacks one conversion's event fires, and under
which platform event name. Pure functions of the configuration, used by the conversion's
first step (activities/prepare.py) and by runs recorded before it (activities/conversions.py).
"""

from relay.destinations.registry import default_event_name
from relay.domain.events import is_reversal
from relay.domain.models import CustomConversion, OutboundPostback, Pixel
from relay.domain.workflow_io import PixelTarget


def pixel_targets(
    pixels: list[Pixel], customs: list[CustomConversion], event_type: str
) -> list[PixelTarget]:
    """Custom conversions of the event route it; without one, the primary pixels fire."""
    by_id = {p.id: p for p in pixels}
    routed = [
        PixelTarget(
            pixel_id=c.pixel_id,
            platform=by_id[c.pixel_id].platform,
            pixel_name=by_id[c.pixel_id].name,
            event_name=c.event_name,
        )
        for c in customs
        if c.inbound_event == event_type and c.pixel_id in by_id
    ]
    if routed:
        return routed
    return [
        PixelTarget(
            pixel_id=p.id,
            platform=p.platform,
            pixel_name=p.name,
            event_name=default_event_name(p, event_type),
        )
        for p in pixels
        if p.primary
    ]


def fires_for(postback: OutboundPostback, event_type: str) -> bool:
    """A postback listing events fires for those; one listing none, for every conversion
    event but not for reversals, which go only where they are asked for."""
    if postback.events:
        return event_type in postback.events
    return not is_reversal(event_type)
