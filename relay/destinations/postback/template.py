"""Outbound postbacks: URL templates with macros, their expansion and redaction.

A campaign forwards each conversion to traffic sources by a GET or POST to a URL built
from a template such as `https://ts.example/pb?cid={click_id}&sum={payout}` (product.md 3).
"""

import re
from collections.abc import Mapping
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import httpx
import idna

from relay.destinations.base import REDACTED
from relay.domain.models import Click, Conversion

# Spec order, so the "known:" hint in a problem message reads like the documentation.
_MACRO_ORDER = (
    "click_id",
    "conversion_id",
    "event_id",
    "payout",
    "currency",
    "event",
    "txid",
    "external_id",
    *(f"sub{n}" for n in range(1, 6)),
)
MACROS: frozenset[str] = frozenset(_MACRO_ORDER)
MAX_TEMPLATE_LENGTH = 2048

SECRET_NAME_PARTS = ("key", "token", "secret", "pass", "auth", "sig", "signature", "api")

# Anything between a brace pair without nested braces; the name is checked separately so
# that `{clickid}` or `{Click_ID}` is reported as unknown rather than passed through.
_BRACED = re.compile(r"\{([^{}]*)\}")


def _fill(template: str, placeholder: str) -> str:
    return _BRACED.sub(placeholder, template)


def _url_problems(template: str) -> list[str]:
    try:
        parts = urlsplit(_fill(template, "x"))
        # Filling with two different values shows whether a macro lands before the path.
        other = urlsplit(_fill(template, "y"))
    except ValueError as exc:
        return [f"not a valid URL: {exc}"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ["not an absolute http(s) URL with a host"]
    if (parts.scheme, parts.netloc) != (other.scheme, other.netloc):
        # sub1..sub5 and external_id come from the visitor's click, so a macro in the host
        # would let anyone who clicks choose where Relay sends requests.
        return ["macros are not allowed in the scheme, host or port; use the path or query"]
    try:
        _ = parts.port  # raises on a non-numeric or out-of-range port
    except ValueError as exc:
        return [f"not a valid URL: {exc}"]
    host = parts.hostname
    if host.isascii() and "xn--" not in host:  # no name to encode (addresses checked apart)
        return []
    return _host_problems(_fill(template, "x"))


def _host_problems(url: str) -> list[str]:
    """A host name no request can be sent to: one httpx refuses (full-width or other
    characters IDNA forbids), or an `xn--` label that is not valid punycode."""
    try:
        idna.decode(httpx.URL(url).host)
    except (httpx.InvalidURL, UnicodeError) as exc:
        return [f"not a valid URL: the host cannot be sent to ({type(exc).__name__})"]
    return []


def template_problems(template: str) -> list[str]:
    """Everything wrong with an outbound postback URL template; empty when it is usable."""
    problems: list[str] = []
    if len(template) > MAX_TEMPLATE_LENGTH:
        problems.append(f"longer than {MAX_TEMPLATE_LENGTH} characters ({len(template)})")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in template):
        problems.append("contains whitespace or control characters; percent-encode them")
    # Blank out well-formed `{...}` pairs; any brace left over has no partner.
    stray = _BRACED.sub(lambda m: " " * len(m.group()), template)
    position = next((i for i, char in enumerate(stray) if char in "{}"), None)
    if position is not None:
        problems.append(f"unbalanced brace {stray[position]!r} at position {position}")
    known = ", ".join(f"{{{name}}}" for name in _MACRO_ORDER)
    unknown = dict.fromkeys(
        m.group(1) for m in _BRACED.finditer(template) if m.group(1) not in MACROS
    )
    problems.extend(f"unknown macro {{{name}}}; known: {known}" for name in unknown)
    problems.extend(_url_problems(template))
    return problems


def expand(template: str, values: Mapping[str, str]) -> str:
    """Fill each known `{macro}` with its value percent-encoded; a missing value is "".

    Encoding with no safe characters lets a value sit anywhere in the URL: a payout of
    `1&x=2` cannot add a parameter and a click ID with `/` or `#` cannot bend the path.
    """

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in MACROS:  # template_problems rejects these; never guess a value
            return match.group()
        value = quote(values.get(name, ""), safe="")
        # "." and ".." would be dot segments, which httpx resolves: a visitor's sub1=..
        # would remove a segment of the path. Encoded, they are plain text.
        return value.replace(".", "%2E") if value in (".", "..") else value

    return _BRACED.sub(value_of, template)


def _is_secret_name(name: str) -> bool:
    lowered = unquote_plus(name).lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


def _redact_pair(pair: str) -> str:
    name, sep, _ = pair.partition("=")
    return f"{name}={REDACTED}" if sep and _is_secret_name(name) else pair


def redact_url(url: str) -> str:
    """The URL for a log line: userinfo and values of secret-looking parameters removed.

    Scheme, host, port, path and parameter names stay, as do other values (click IDs and
    payouts the media buyer needs). Values are edited in the raw query so what is kept
    reads exactly as sent. The fragment is dropped: it never goes on the wire. A secret
    inside the path cannot be recognised and stays.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # a log helper must not fail the send, nor print what it can't parse
        return REDACTED
    host = parts.netloc.rpartition("@")[2]
    query = "&".join(_redact_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def macro_values(conversion: Conversion, click: Click | None) -> dict[str, str]:
    """The value of every macro for one conversion (product.md section 3)."""
    payout = "" if conversion.payout is None else format(conversion.payout.normalize(), "f")
    values = {
        "click_id": conversion.click_id,
        "conversion_id": conversion.conversion_id,
        # The event ID Meta and TikTok dedup on: a tracker that dedups takes it as its
        # transaction ID, so a re-send after a crash counts once there too.
        "event_id": conversion.conversion_id,
        "payout": payout,
        "currency": conversion.currency,
        "event": conversion.event_type,
        "txid": conversion.txid,
        # The click's own external ID; the postback's is stored only hashed.
        "external_id": click.external_id if click else "",
    }
    for n in range(1, 6):
        values[f"sub{n}"] = getattr(click, f"sub{n}") if click else ""
    return values
