"""The Temporal UI's codec session (api/routes/codec.py, issue 18 #5, #2, #3): a signed,
expiring session like the console's, ended by *Sign out everywhere* and by its own end,
Secure over https; its form is capped; wrong tokens are limited per address."""

import base64

import httpx
import pytest

from api.routes.codec import COOKIE
from api.services import sessions
from tests.console import csrf_of, sign_in
from tests.harness import ADMIN_TOKEN, Relay

PLAIN = {
    "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
    "data": base64.b64encode(b'"hello"').decode(),
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def _open(relay: Relay, url: str = "/codec/session") -> httpx.Response:
    opened = await relay.http.post(url, data={"token": ADMIN_TOKEN})
    assert opened.status_code == 200, opened.text
    relay.http.cookies.clear()  # each request below names the cookie it sends
    return opened


def _cookie(opened: httpx.Response) -> str:
    """`relay_codec=...`, as a browser sends it back."""
    return opened.headers["set-cookie"].split(";")[0]


async def _decode(relay: Relay, cookie: str) -> httpx.Response:
    return await relay.http.post(
        "/codec/decode", json={"payloads": [PLAIN]}, headers={"Cookie": cookie}
    )


async def test_sign_out_everywhere_ends_the_codec_session(relay: Relay) -> None:
    """The cookie was a fixed HMAC of the admin token: it outlived every sign-out."""
    cookie = _cookie(await _open(relay))
    assert (await _decode(relay, cookie)).status_code == 200
    await sign_in(relay)
    settings = await relay.http.get("/ui/settings")
    ended = await relay.http.post("/ui/sign-out-everywhere", data={"csrf": csrf_of(settings)})
    assert ended.status_code == 303
    refused = await _decode(relay, cookie)
    assert refused.status_code == 401
    assert refused.json()["error"]["param"] == "Authorization"
    # A new codec session opens in the new epoch.
    assert (await _decode(relay, _cookie(await _open(relay)))).status_code == 200


async def test_ending_a_codec_session_ends_a_copied_cookie_too(relay: Relay) -> None:
    opened = await _open(relay)
    assert "/codec/session/end" in opened.text  # the page offers to end it
    cookie = _cookie(opened)
    other = _cookie(await _open(relay))  # another browser's session
    ended = await relay.http.post("/codec/session/end", headers={"Cookie": cookie})
    assert ended.status_code == 200 and "Codec session ended" in ended.text
    assert ended.headers["set-cookie"].startswith(f'{COOKIE}="";')
    assert (await _decode(relay, cookie)).status_code == 401  # revoked on the server
    assert (await _decode(relay, other)).status_code == 200
    again = await relay.http.post("/codec/session/end", headers={"Cookie": cookie})
    assert again.status_code == 401


async def test_the_codec_cookie_is_a_signed_expiring_session(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    cookie = _cookie(await _open(relay))
    session_id, expires, _ = cookie.removeprefix(f"{COOKIE}=").split(".")
    # Its expiry altered, or a console session's cookie: refused.
    forged = f"{COOKIE}={session_id}.{int(expires) + 86_400}.{cookie.rsplit('.', 1)[1]}"
    assert (await _decode(relay, forged)).status_code == 401
    _, console = sessions.new_session(relay.runtime.keys, ADMIN_TOKEN)
    assert (await _decode(relay, f"{COOKIE}={console}")).status_code == 401
    # Over https (or behind a proxy ending TLS), Secure; 12 hours, HttpOnly, SameSite.
    https = await _open(relay, "https://relay.test/codec/session")
    attributes = {a.strip().lower() for a in https.headers["set-cookie"].split(";")[1:]}
    assert attributes == {
        "secure",
        "httponly",
        "samesite=strict",
        "path=/codec",
        f"max-age={sessions.SESSION_TTL_S}",
    }
    monkeypatch.setattr(relay.runtime.settings, "public_url", "https://relay.example")
    assert "Secure" in (await _open(relay)).headers["set-cookie"]


async def test_the_reproduction_form_is_refused_unparsed(relay: Relay) -> None:
    """printf 'a=b&%.0s' $(seq 262000) | curl -X POST $A/codec/session --data-binary @-"""
    body = b"a=b&" * 262_000
    refused = await relay.http.post("/codec/session", content=body, headers=FORM)
    assert refused.status_code == 413
    assert refused.json()["error"] == {
        "code": "body_too_large",
        "message": "a form here is at most 8192 bytes",
        "param": "body",
    }


async def test_wrong_codec_tokens_are_limited_and_the_right_one_still_opens(
    relay: Relay,
) -> None:
    limit = relay.runtime.settings.auth_failure_limit
    statuses = []
    for i in range(limit + 5):
        answer = await relay.http.post("/codec/session", data={"token": f"guess-{i}"})
        statuses.append(answer.status_code)
    assert statuses == [401] * limit + [429] * 5
    assert int(answer.headers["retry-after"]) > 0
    error = answer.json()["error"]
    assert error["code"] == "too_many_failures" and error["param"] == "Authorization"
    # A dead cookie counts too; the bearer token and the right form token still pass.
    assert (await _decode(relay, f"{COOKIE}=forged")).status_code == 429
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    passed = await relay.http.post("/codec/decode", json={"payloads": [PLAIN]}, headers=bearer)
    assert passed.status_code == 200
    assert (await _decode(relay, _cookie(await _open(relay)))).status_code == 200
