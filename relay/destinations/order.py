"""The order facts both platforms take under the same names: Meta's `custom_data` and
TikTok's `properties` carry `value`, `currency`, `content_type` and `order_id`."""

from relay.destinations.facts import EventFacts
from relay.destinations.normalize import UnusableValue, json_number, normalize_currency


def order_fields(facts: EventFacts, dropped: list[str]) -> dict[str, object]:
    """The four order fields; an unusable value is left out and noted in `dropped`."""
    fields: dict[str, object] = {}
    if facts.value is not None:
        try:
            fields["value"] = json_number(facts.value)
        except UnusableValue as exc:
            dropped.append(str(exc))
    try:
        fields["currency"] = normalize_currency(facts.currency)
    except UnusableValue as exc:
        dropped.append(str(exc))
    fields["content_type"] = "product"
    if facts.order_id:
        fields["order_id"] = facts.order_id
    return fields
