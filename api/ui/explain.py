"""Why a send failed, in a media buyer's words, with a link to what fixes it.

Keyed on the text Relay stores: an attempt's `error` and a send's `reason`, which is the
same text behind the workflow's "{kind}_{verdict}: " (e.g. "meta_permanent: meta error
190 (OAuthException): ..."; relay/destinations/meta/answers.py, tiktok/answers.py,
postback/answers.py, classify.py, activities/attempts.py and activities/sending.py write
them). A text no rule knows is shown as it is; the pages always show the raw text too, in
smaller print, for operators."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Explanation:
    text: str  # what happened, in words a media buyer understands
    fix: str = ""  # what to do about it ("" if nothing: Relay copes by itself)
    link: str | None = None  # where the fix is made, when the page knows


@dataclass(frozen=True)
class Send:
    """The send a text belongs to, for the link to its fix."""

    kind: str  # "pixel" or "postback"
    campaign_id: str
    target_id: str

    def link(self) -> str | None:
        if not (self.campaign_id and self.target_id):
            return None
        anchor = "pixel" if self.kind == "pixel" else "outbound-postback"
        return f"/ui/campaigns/{quote(self.campaign_id, safe='')}#{anchor}-{self.target_id}"


# Meta Graph API and TikTok Events API codes (platforms.md 1.6 and 2.5).
META_TOKEN = {102, 190}  # the token itself is refused: expired, revoked, mistyped
META_PERMISSION = {10, *range(200, 300)}  # a valid token without access to the pixel
META_THROTTLE = {4, 17, 341, 613, 80004}
META_INVALID = {100}
META_PASSING = {1, 2}
TIKTOK_TOKEN = {40102, 40104, 40105}
TIKTOK_PERMISSION = {40001}
TIKTOK_THROTTLE = {40100}
TIKTOK_INVALID = {40002}

_META_CODE = re.compile(r"\bmeta error (\d+)")
_TIKTOK_CODE = re.compile(r"\btiktok code (\d+)")
_HTTP = re.compile(r"\bHTTP (\d{3})\b")
_TOO_OLD = re.compile(r"not sendable: older than the platform(?:'s|s')? ([\d.]+)-day limit")

REFUSED_CREDENTIAL = (
    "The platform refused the pixel's access token: it has expired, was revoked or was mistyped."
)
NO_PERMISSION = (
    "The pixel's access token works but may not send to this pixel (a token of another "
    "account, or one without the permission)."
)
PASTE_NEW = "Paste a new access token"
SLOW_DOWN = "The platform asked Relay to slow down; Relay retries by itself."


def passing(who: str = "The platform") -> str:
    return (
        f"{who} did not answer properly, usually a passing problem on its side or the "
        "network's. Relay retries by itself for a while; a send that still failed then can "
        "be redelivered."
    )


INVALID = "The platform refused the event as invalid, often a wrong pixel ID or setting."
CHECK_PIXEL = "Check the pixel's settings"


def _who(send: Send) -> str:
    return "The platform" if send.kind == "pixel" else "The traffic source's server"


def _platform(code_of: re.Pattern[str], error: str) -> int | None:
    found = code_of.search(error)
    return int(found.group(1)) if found else None


def _by_code(error: str, send: Send) -> Explanation | None:
    """A Meta or TikTok error code's meaning."""
    link = send.link()
    meta, tiktok = _platform(_META_CODE, error), _platform(_TIKTOK_CODE, error)
    if meta in META_TOKEN or tiktok in TIKTOK_TOKEN:
        return Explanation(REFUSED_CREDENTIAL, PASTE_NEW, link)
    if meta in META_PERMISSION or tiktok in TIKTOK_PERMISSION:
        return Explanation(NO_PERMISSION, "Paste a token that has access to this pixel", link)
    if meta in META_THROTTLE or tiktok in TIKTOK_THROTTLE:
        return Explanation(SLOW_DOWN)
    if meta in META_INVALID or tiktok in TIKTOK_INVALID:
        return Explanation(INVALID, CHECK_PIXEL, link)
    if meta in META_PASSING or (tiktok is not None and 50000 <= tiktok < 60000):
        return Explanation(passing())
    return None


def _by_words(error: str, send: Send) -> Explanation | None:
    """What Relay's own texts mean: not sendable, a token it cannot use, a passing problem."""
    link = send.link()
    if too_old := _TOO_OLD.search(error):
        return Explanation(
            f"Too old to send: the platform accepts conversions up to {too_old.group(1)} "
            f"day{'' if too_old.group(1) == '1' else 's'} old, so nothing was sent. No retry "
            "or redelivery can change that."
        )
    if "not sendable: no earlier attempt" in error:
        return Explanation("Nothing was sent: Relay does not know which event to send again.")
    if "access token cannot be decrypted" in error:
        text = "Relay cannot read the pixel's stored access token (its encryption key is gone)."
        return Explanation(text, "Paste the access token again", link)
    if "UnicodeEncodeError" in error:
        text = "The pixel's access token has characters no platform accepts (extra text pasted?)."
        return Explanation(text, "Paste the access token again", link)
    if re.search(r"\b(pixel|postback) \S+ was deleted", error):
        what = "pixel" if send.kind == "pixel" else "outbound postback"
        return Explanation(f"The {what} was deleted, so nothing more is sent to it.")
    if "timeout: " in error or "transport error: " in error:
        return Explanation(passing(_who(send)))
    if "unexpected error:" in error or "store unavailable:" in error:
        return Explanation("Relay had a passing problem of its own; it retries by itself.")
    return None


def _by_status(error: str, send: Send) -> Explanation | None:
    """An HTTP status with no code Relay knows."""
    found = _HTTP.search(error)
    if found is None:
        return None
    status = int(found.group(1))
    who = _who(send)
    if status == 429:
        return Explanation(SLOW_DOWN.replace("The platform", who))
    if status >= 500 or status == 408:
        return Explanation(passing(who))
    if send.kind == "postback" and 300 <= status < 500:
        text = f"{who} refused the postback (HTTP {status})."
        return Explanation(text, "Check the outbound postback's URL", send.link())
    return None


RULES: tuple[Callable[[str, Send], Explanation | None], ...] = (_by_words, _by_code, _by_status)


def explain(
    error: str, campaign_id: str = "", kind: str = "pixel", target_id: str = ""
) -> Explanation | None:
    """`error` (an attempt's error or a send's reason) in a media buyer's words, with the
    link to its fix on the campaign's page when `campaign_id` and `target_id` (the pixel
    or outbound postback) are given; None for a text no rule knows."""
    if not error:
        return None
    send = Send(kind, campaign_id, target_id)
    for rule in RULES:
        found = rule(error, send)
        if found is not None:
            return found
    return None
