"""Reading a request's raw parameters, the one way every route does: `/postback`,
`/api/event-id`, the console's forms and the codec session's. Strict UTF-8, at most
`MAX_PARAMS` (or the caller's cap), counted before any is decoded; forms also have a byte
cap (`read_form`), checked before the body is read when its length is declared. Each name
once for `/postback` (a repeat must carry the same value); a form keeps a field's first."""

import urllib.parse
from typing import Any

from starlette.requests import Request

from relay.core.errors import BadParameter, BodyTooLarge

MAX_PARAMS = 64
# Forms: the console's, and the sign-in forms (the console's and the codec session's),
# which hold a token and a path and are open to anyone, so their cap is small.
FORM_MAX_FIELDS = 256  # a campaign form has one box per network
FORM_MAX_BYTES = 64 * 1024
SIGN_IN_MAX_BYTES = 8 * 1024
SIGN_IN_MAX_FIELDS = 8
# A postback's JSON is a flat object; deeper nesting is refused before parsing, the same on
# every Python (json.loads' own limit is 1,000 levels on 3.11 and about 20,000 on 3.13).
MAX_JSON_DEPTH = 32
_OPENING, _CLOSING, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), 0x22, 0x5C


def decoded_pairs(encoded: bytes, max_pairs: int = MAX_PARAMS) -> list[tuple[str, str]]:
    """URL-encoded pairs, decoded strictly: two different invalid byte strings must not
    both turn into U+FFFD and collide into one conversion ID. More than `max_pairs` are
    refused (400, `body`) before any is decoded."""
    parts = [part for part in encoded.split(b"&") if part]
    if len(parts) > max_pairs:
        raise too_many(max_pairs)
    pairs: list[tuple[str, str]] = []
    for part in parts:
        raw_name, _, raw_value = part.partition(b"=")
        name_bytes = urllib.parse.unquote_to_bytes(raw_name.replace(b"+", b" "))
        value_bytes = urllib.parse.unquote_to_bytes(raw_value.replace(b"+", b" "))
        name = name_bytes.decode("utf-8", errors="replace")
        try:
            pairs.append((name_bytes.decode("utf-8"), value_bytes.decode("utf-8")))
        except UnicodeDecodeError:
            raise BadParameter(f"{name} is not valid UTF-8", name) from None
    return pairs


def too_many(cap: int) -> BadParameter:
    return BadParameter(f"more than {cap} parameters", "body")


async def read_form(
    request: Request, max_bytes: int, max_fields: int = FORM_MAX_FIELDS
) -> dict[str, str]:
    """A URL-encoded form body, each field's first value. Over `max_bytes` it is 413
    (`body`) before a byte is read when the length is declared (else once read, as the
    gate's cap allows), over `max_fields` 400 before a field is decoded: a 1 MB form of
    262,000 fields costs no parsing."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _form_too_large(max_bytes)
    body = await request.body()
    if len(body) > max_bytes:
        raise _form_too_large(max_bytes)
    form: dict[str, str] = {}
    for name, value in decoded_pairs(body, max_fields):
        form.setdefault(name, value)
    return form


def _form_too_large(cap: int) -> BodyTooLarge:
    return BodyTooLarge(f"a form here is at most {cap} bytes", "body")


def nested_too_deeply(text: bytes) -> bool:
    """Whether JSON `text` opens more than `MAX_JSON_DEPTH` arrays or objects inside one
    another (brackets inside strings do not count)."""
    if text.count(b"[") + text.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in text:
        if in_string:
            in_string = escaped or byte != _QUOTE
            escaped = not escaped and byte == _BACKSLASH
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENING:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif byte in _CLOSING:
            depth -= 1
    return False


def _given_twice(name: str) -> BadParameter:
    return BadParameter(f"{name} is given twice with different values", name)


def json_object(members: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`'s `object_pairs_hook`: a key given twice with different values is refused
    (json.loads alone keeps the last one), as a repeated query parameter is."""
    found: dict[str, Any] = {}
    for name, value in members:
        if name in found and (type(found[name]), found[name]) != (type(value), value):
            raise _given_twice(name)
        found[name] = value
    return found


def one_value_each(pairs: list[tuple[str, Any]]) -> dict[str, str]:
    """The parameters as text, each given at most once; JSON nulls count as absent."""
    if len(pairs) > MAX_PARAMS:
        raise too_many(MAX_PARAMS)
    raw: dict[str, str] = {}
    for name, value in pairs:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            if value is None:
                continue
            raise BadParameter(f"{name} must be a string or a number", str(name))
        text = str(value)
        if raw.get(name, text) != text:
            raise _given_twice(str(name))
        raw[str(name)] = text
    return raw
