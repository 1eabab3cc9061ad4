"""Sessions, the console's and the codec's: a signed, expiring cookie, the CSRF token tied
to it, and the server-side state that ends sessions before they expire (read, extended
and moved on in the store by `session_state`, `end_session` and `end_every_session`).

The cookie holds `{session_id}.{expires}.{mac}` and nothing secret: the MAC is HMAC-SHA256
under a key derived from the key ring (so a restart keeps sessions), from the admin token
(so a new admin token ends every session), from the workspace's session epoch (so *Sign
out everywhere*, which moves the epoch on, ends every session too) and from the session's
purpose (a console cookie does not open the codec, nor the reverse); the admin token itself
is never in it. Any key of the ring verifies, so rotating `RELAY_ENCRYPTION_KEY` does not
sign anyone out.

Signing out ends the session on the server too: its ID joins the workspace's revoked
sessions (`SessionState.revoked`, a workspace setting, each ID until its session would have
expired anyway, so the list holds only the last 12 hours' sign-outs). Past `MAX_REVOKED` a
sign-out moves the epoch on instead, ending every session: the list stays small."""

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.requests import Request

from relay.core.crypto import KeyRing
from relay.runtime import Runtime
from relay.store.config import ConfigStore

COOKIE = "relay_console"
PATH = "/ui"
SESSION_TTL_S = 12 * 3600
CONSOLE = "console session"  # a session's purpose: its signing keys derive from it
CODEC = "codec session"
EPOCH_SETTING = "console_session_epoch"  # the workspace setting that holds the epoch
REVOKED_SETTING = "revoked_sessions"  # the one that holds the revoked sessions
MAX_REVOKED = 256
_REVOKE_TRIES = 3


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its random ID, and when the session ends (Unix seconds)."""

    session_id: str
    expires: int
    csrf_token: str


def _signing_keys(keys: KeyRing, admin_token: str, epoch: int, purpose: str) -> list[bytes]:
    """One signing key per ring key, the primary's first. Epoch 0 signs as before epochs
    existed, so an upgrade signs no one out."""
    secret = admin_token if epoch == 0 else f"{admin_token}\n{epoch}"
    return [
        hmac.new(keys.subkey(purpose, key_id), secret.encode(), hashlib.sha256).digest()
        for key_id in keys.key_ids
    ]


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _session(key: bytes, session_id: str, expires: int) -> Session:
    return Session(session_id, expires, _mac(key, f"csrf.{session_id}"))


def _now(now: float | None) -> float:
    return now if now is not None else time.time()


def new_session(
    keys: KeyRing,
    admin_token: str,
    now: float | None = None,
    epoch: int = 0,
    purpose: str = CONSOLE,
) -> tuple[Session, str]:
    """A fresh session and the cookie value that carries it."""
    session_id = base64.urlsafe_b64encode(os.urandom(18)).decode()
    expires = int(_now(now)) + SESSION_TTL_S
    key = _signing_keys(keys, admin_token, epoch, purpose)[0]
    payload = f"{session_id}.{expires}"
    return _session(key, session_id, expires), f"{payload}.{_mac(key, payload)}"


def read_session(
    keys: KeyRing,
    admin_token: str,
    cookie: str,
    now: float | None = None,
    epoch: int = 0,
    purpose: str = CONSOLE,
) -> Session | None:
    """The session a cookie value carries, or None if it is malformed, forged or expired
    (revocation is `SessionState.read`'s to check)."""
    session_id, _, rest = cookie.partition(".")
    expires_text, _, mac = rest.partition(".")
    if not (session_id and expires_text.isdigit() and mac):
        return None
    expires = int(expires_text)
    if expires <= _now(now):
        return None
    payload = f"{session_id}.{expires_text}"
    for key in _signing_keys(keys, admin_token, epoch, purpose):
        if hmac.compare_digest(mac.encode(), _mac(key, payload).encode()):
            return _session(key, session_id, expires)
    return None


def csrf_matches(session: Session, given: str) -> bool:
    """Whether a form's CSRF field is this session's token (constant time)."""
    return hmac.compare_digest(given.encode(), session.csrf_token.encode())


@dataclass(frozen=True)
class SessionState:
    """What the server holds about sessions: the epoch, and the revoked session IDs with
    when each would have expired."""

    epoch: int = 0
    revoked: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, epoch: str | None, revoked: str | None) -> "SessionState":
        """From the two workspace settings. A value that is not what Relay writes fails
        (closed: every session request fails) rather than reading as nothing revoked."""
        found = json.loads(revoked) if revoked else {}
        if not isinstance(found, dict) or not all(isinstance(v, int) for v in found.values()):
            raise ValueError(f"the {REVOKED_SETTING} setting is not a JSON object of ints")
        return cls(int(epoch) if epoch else 0, found)

    def read(
        self,
        keys: KeyRing,
        admin_token: str,
        cookie: str,
        purpose: str = CONSOLE,
        now: float | None = None,
    ) -> Session | None:
        """The live session a cookie carries: signed in this epoch, not expired, not revoked."""
        found = read_session(keys, admin_token, cookie, now, self.epoch, purpose)
        if found is None or found.session_id in self.revoked:
            return None
        return found

    def revoking(self, session: Session, now: float | None = None) -> str | None:
        """The revoked sessions' setting with `session` added and the expired ones left out,
        or None when that would be more than `MAX_REVOKED` (move the epoch on instead)."""
        at = _now(now)
        kept = {sid: until for sid, until in self.revoked.items() if until > at}
        kept[session.session_id] = session.expires
        if len(kept) > MAX_REVOKED:
            return None
        return json.dumps(kept, separators=(",", ":"), sort_keys=True)


def _stored_state(config: ConfigStore) -> SessionState:
    return SessionState.parse(
        config.get_setting(EPOCH_SETTING), config.get_setting(REVOKED_SETTING)
    )


async def session_state(runtime: Runtime) -> SessionState:
    """The workspace's session state (epoch, revoked sessions), read from the store at
    every signed-in request: a sign-out through any API process holds from the next
    request on, in this process and every other sharing the store. A stored value that is
    not what Relay writes fails every session request (closed), not back to none."""
    return await runtime.run(_stored_state, runtime.config)


async def end_session(runtime: Runtime, session: Session) -> None:
    """Revoke one session on the server: its cookie, copied or not, opens nothing more.
    The list is one setting, read, extended and written: a sign-out in another process at
    the same moment may write over this one, so it is read back and written again (a
    third failure ends every session instead). That narrows the race to a write landing
    between this read-back and the other's own, within milliseconds of each other."""
    for _ in range(_REVOKE_TRIES):
        state = await session_state(runtime)
        if session.session_id in state.revoked:
            return
        revoked = state.revoking(session)
        if revoked is None:  # the list is full: end every session rather than grow it
            break
        await runtime.run(runtime.config.put_setting, REVOKED_SETTING, revoked)
    else:
        if session.session_id in (await session_state(runtime)).revoked:
            return
    await end_every_session(runtime)


async def end_every_session(runtime: Runtime) -> None:
    """Move the epoch on: every console and codec session ends, in every browser."""
    epoch = (await session_state(runtime)).epoch
    await runtime.run(runtime.config.put_setting, EPOCH_SETTING, str(epoch + 1))


def secure_cookie(request: Request, public_url: str | None) -> bool:
    """Whether a session cookie must be Secure: the browser reached Relay over https (or a
    proxy ending TLS does, as RELAY_PUBLIC_URL says)."""
    return request.url.scheme == "https" or (public_url or "").lower().startswith("https://")
