"""How the campaign pages read their forms: the text a browser sends turned into the API's
own request bodies (api/schemas.py), and the API's refusals turned into messages by field."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from relay.core.errors import Conflict, InvalidField, NotFound

B = TypeVar("B", bound=BaseModel)
T = TypeVar("T")

# The confirmation a page shows after a change (`?done=` names one; nothing else is shown).
NOTICES = {
    "created": "Campaign created. Add its pixels below.",
    "saved": "Campaign saved.",
    "deleted": "Campaign deleted. Its recorded conversions and logs are kept.",
    "pixel-added": "Pixel added.",
    "pixel-saved": "Pixel saved.",
    "pixel-deleted": "Pixel deleted. Its fire logs are kept.",
    "custom-conversion-added": "Custom conversion added.",
    "custom-conversion-saved": "Custom conversion saved.",
    "custom-conversion-deleted": "Custom conversion deleted.",
    "postback-added": "Outbound postback added.",
    "postback-saved": "Outbound postback saved.",
    "postback-deleted": "Outbound postback deleted.",
}


@dataclass
class FormState:
    """One form's values (as text, to fill its fields) and each field's error message;
    the message under "" is about the whole form."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str:
        return self.values.get(name, "")


class Refusal(Exception):
    """A form the API refused: the status it answered and its messages by field."""

    def __init__(self, status: int, errors: dict[str, str]) -> None:
        self.status, self.errors = status, errors


def listed(text: str) -> list[str]:
    """A comma-separated field as a list, blanks dropped: `deposit, upsell` -> 2 events."""
    return [part.strip() for part in text.split(",") if part.strip()]


def optional(text: str) -> str | None:
    """An empty field is no value (the API's default, or none)."""
    return text.strip() or None


def ticked(form: dict[str, str], name: str) -> bool:
    """A checkbox: a browser sends it only when it is ticked."""
    return form.get(name, "") not in ("", "false", "off")


def kept(form: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The submitted values of `names`, to fill the form again."""
    return {name: form.get(name, "") for name in names}


# A campaign form has one checkbox per network, named by this prefix and the network's ID.
NETWORK_BOX = "network-"


def ticked_networks(form: dict[str, str]) -> list[str]:
    """The networks a campaign form allows: those whose box is ticked (none: any network)."""
    return [
        name.removeprefix(NETWORK_BOX)
        for name in form
        if name.startswith(NETWORK_BOX) and ticked(form, name)
    ]


def network_boxes(network_ids: list[str]) -> dict[str, str]:
    """The form values that tick these networks' boxes."""
    return {NETWORK_BOX + network_id: "on" for network_id in network_ids}


def _messages(exc: ValidationError, names: frozenset[str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else ""
        errors.setdefault(where if where in names else "", str(error["msg"]))
    return errors


async def submitted(model: type[B], body: dict[str, Any], call: Callable[[B], Awaitable[T]]) -> T:
    """`call` with `body` validated as the API validates it; a refusal (the model's 422, or
    the API's InvalidField, Conflict or NotFound) is a `Refusal` with the API's messages."""
    names = frozenset(model.model_fields)
    try:
        checked = model.model_validate(body)
    except ValidationError as exc:
        raise Refusal(422, _messages(exc, names)) from None
    try:
        return await call(checked)
    except (InvalidField, Conflict, NotFound) as exc:
        where = exc.param if exc.param in names else ""
        raise Refusal(exc.status_code, {where or "": exc.message}) from None
