"""The console's session: a signed, expiring cookie, and the CSRF token tied to it.

The cookie holds `{session_id}.{expires}.{mac}` and nothing secret: the MAC is HMAC-SHA256
under a key derived from the key ring (so a restart keeps sessions), from the admin token
(so a new admin token ends every session) and from the workspace's session epoch (so *Sign
out everywhere*, which moves the epoch on, ends every session too); the admin token itself
is never in it. Any key of the ring verifies, so rotating `RELAY_ENCRYPTION_KEY` does not
sign anyone out. Sessions are not stored: signing out clears the cookie in that browser,
and the session ends when it expires, the admin token changes or the epoch moves on."""

import base64
import hashlib
import hmac
import os
import time
from dataclasses import dataclass

from relay.crypto import KeyRing

COOKIE = "relay_console"
PATH = "/ui"
SESSION_TTL_S = 12 * 3600
_PURPOSE = "console session"
EPOCH_SETTING = "console_session_epoch"  # the workspace setting that holds the epoch


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its random ID, and when the session ends (Unix seconds)."""

    session_id: str
    expires: int
    csrf_token: str


def _signing_keys(keys: KeyRing, admin_token: str, epoch: int) -> list[bytes]:
    """One signing key per ring key, the primary's first. Epoch 0 signs as before epochs
    existed, so an upgrade signs no one out."""
    secret = admin_token if epoch == 0 else f"{admin_token}\n{epoch}"
    return [
        hmac.new(keys.subkey(_PURPOSE, key_id), secret.encode(), hashlib.sha256).digest()
        for key_id in keys.key_ids
    ]


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _session(key: bytes, session_id: str, expires: int) -> Session:
    return Session(session_id, expires, _mac(key, f"csrf.{session_id}"))


def new_session(
    keys: KeyRing, admin_token: str, now: float | None = None, epoch: int = 0
) -> tuple[Session, str]:
    """A fresh session and the cookie value that carries it."""
    session_id = base64.urlsafe_b64encode(os.urandom(18)).decode()
    expires = int(now if now is not None else time.time()) + SESSION_TTL_S
    key = _signing_keys(keys, admin_token, epoch)[0]
    payload = f"{session_id}.{expires}"
    return _session(key, session_id, expires), f"{payload}.{_mac(key, payload)}"


def read_session(
    keys: KeyRing, admin_token: str, cookie: str, now: float | None = None, epoch: int = 0
) -> Session | None:
    """The session a cookie value carries, or None if it is malformed, forged or expired."""
    session_id, _, rest = cookie.partition(".")
    expires_text, _, mac = rest.partition(".")
    if not (session_id and expires_text.isdigit() and mac):
        return None
    expires = int(expires_text)
    if expires <= (now if now is not None else time.time()):
        return None
    payload = f"{session_id}.{expires_text}"
    for key in _signing_keys(keys, admin_token, epoch):
        if hmac.compare_digest(mac.encode(), _mac(key, payload).encode()):
            return _session(key, session_id, expires)
    return None


def csrf_matches(session: Session, given: str) -> bool:
    """Whether a form's CSRF field is this session's token (constant time)."""
    return hmac.compare_digest(given.encode(), session.csrf_token.encode())
