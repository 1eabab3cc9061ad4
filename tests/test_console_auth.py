"""The console's sign-in, session cookie, CSRF checks and security headers (issue 11 item 2)."""

import pytest

from api.params import SIGN_IN_MAX_FIELDS
from api.services import sessions
from tests.console import csrf_of, sign_in
from tests.harness import ADMIN_TOKEN, Relay

HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _cookie_attributes(set_cookie: str) -> set[str]:
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


async def test_pages_without_a_session_redirect_to_sign_in_and_back(relay: Relay) -> None:
    for path, back in [
        ("/ui/conversions?state=failed", "%2Fui%2Fconversions%3Fstate%3Dfailed"),
        ("/ui/conversions/conv_x", "%2Fui%2Fconversions%2Fconv_x"),
    ]:
        answer = await relay.http.get(path)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"/ui/sign-in?next={back}"
    # A forged cookie is no session; a change without one changes nothing.
    relay.http.cookies.set(sessions.COOKIE, "abc.9999999999.forged", path="/ui")
    forged = await relay.http.get("/ui/conversions")
    assert forged.status_code == 303
    posted = await relay.http.post("/ui/conversions/conv_x/redeliver", data={"csrf": "x"})
    assert posted.status_code == 303
    assert posted.headers["location"] == "/ui/sign-in?next=%2Fui%2Foverview"


async def test_sign_in_sets_a_session_cookie_and_returns_to_the_page(relay: Relay) -> None:
    form = await relay.http.get("/ui/sign-in?next=/ui/conversions/conv_x")
    assert form.status_code == 200 and 'value="/ui/conversions/conv_x"' in form.text
    answer = await sign_in(relay, "/ui/conversions/conv_x")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/conversions/conv_x"
    set_cookie = answer.headers["set-cookie"]
    assert set_cookie.startswith(f"{sessions.COOKIE}=")
    assert ADMIN_TOKEN not in set_cookie
    assert _cookie_attributes(set_cookie) == {
        "httponly",
        f"max-age={sessions.SESSION_TTL_S}",
        "path=/ui",
        "samesite=strict",
    }
    page = await relay.http.get("/ui/conversions")
    assert page.status_code == 200 and "Sign out" in page.text


async def test_the_cookie_is_secure_over_https(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"token": ADMIN_TOKEN}
    https = await relay.http.post("https://relay.test/ui/sign-in", data=body)
    assert "secure" in _cookie_attributes(https.headers["set-cookie"])
    # Behind a proxy that ends TLS, the public URL says the browser uses https.
    monkeypatch.setattr(relay.runtime.settings, "public_url", "https://relay.example")
    proxied = await relay.http.post("/ui/sign-in", data=body)
    assert "secure" in _cookie_attributes(proxied.headers["set-cookie"])


async def test_a_wrong_token_shows_the_form_again_with_a_message(relay: Relay) -> None:
    answer = await relay.http.post("/ui/sign-in", data={"token": "guess", "next": "/ui"})
    assert answer.status_code == 401
    assert "That is not the admin token" in answer.text and 'aria-invalid="true"' in answer.text
    assert "set-cookie" not in answer.headers
    assert (await relay.http.get("/ui/conversions")).status_code == 303


async def test_sign_in_never_sends_the_browser_to_another_site(relay: Relay) -> None:
    for next_path in ("https://evil.example/ui", "//evil.example/ui", "/api/networks", "/\\evil"):
        answer = await relay.http.post(
            "/ui/sign-in", data={"token": ADMIN_TOKEN, "next": next_path}
        )
        assert answer.headers["location"] == "/ui/overview", next_path


async def test_a_change_without_the_sessions_csrf_token_is_refused(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(relay)
    page = await relay.http.get("/ui/conversions")
    token = csrf_of(page)
    for form in ({}, {"csrf": ""}, {"csrf": token + "x"}):
        refused = await relay.http.post("/ui/sign-out", data=form)
        assert refused.status_code == 403, form
        assert "CSRF token is missing or wrong" in refused.text
        assert "set-cookie" not in refused.headers
    # A form from another site is refused even with the token.
    foreign = await relay.http.post(
        "/ui/sign-out", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert (await relay.http.get("/ui/conversions")).status_code == 200
    # Behind a proxy that does not pass the Host on, the public URL's host is this site.
    monkeypatch.setattr(relay.runtime.settings, "public_url", "https://relay.example")
    proxied = await relay.http.post(
        "/ui/conversions/conv_x/redeliver",
        data={"csrf": token},
        headers={"Origin": "https://relay.example"},
    )
    assert proxied.status_code == 404  # past the checks, to a conversion that does not exist

    signed_out = await relay.http.post(
        "/ui/sign-out", data={"csrf": token}, headers={"Origin": "http://relay.test"}
    )
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/ui/sign-in"
    assert (await relay.http.get("/ui/conversions")).status_code == 303


async def test_every_console_answer_has_the_security_headers(relay: Relay) -> None:
    answers = [
        await relay.http.get("/ui/conversions"),  # the redirect to sign-in
        await relay.http.get("/ui/sign-in"),
        await relay.http.get("/ui/no-such-page"),
        await relay.http.get("/ui/static/console.css"),
    ]
    await sign_in(relay)
    answers += [
        await relay.http.get("/ui/conversions"),
        await relay.http.post("/ui/sign-out", data={}),  # 403
    ]
    assert [a.status_code for a in answers] == [303, 200, 404, 200, 200, 403]
    for answer in answers:
        for name, value in HEADERS.items():
            assert answer.headers[name] == value, (answer.url, name)
    for page in (answers[1], answers[2], answers[4], answers[5]):
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["content-type"].startswith("text/html")
    assert answers[3].headers["content-type"].startswith("text/css")
    assert "<script" not in answers[4].text and " style=" not in answers[4].text


async def test_the_console_is_not_in_the_openapi_document(relay: Relay) -> None:
    schema = (await relay.http.get("/openapi.json")).json()
    assert not [path for path in schema["paths"] if path.startswith("/ui")]


async def test_sign_out_everywhere_ends_a_copied_session_too(relay: Relay) -> None:
    """The epoch is the workspace's, shared by every test: safe as tests run one at a time
    and each signs in for itself (a browser kept signed in across tests would be out)."""
    await sign_in(relay)
    copied = relay.http.cookies.get(sessions.COOKIE, path="/ui")
    assert copied
    settings = await relay.http.get("/ui/settings")
    refused = await relay.http.post("/ui/sign-out-everywhere", data={"csrf": "wrong"})
    assert refused.status_code == 403  # a change without the page's CSRF token: nothing

    answer = await relay.http.post("/ui/sign-out-everywhere", data={"csrf": csrf_of(settings)})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/sign-in?everywhere=1"
    assert 'relay_console=""' in answer.headers["set-cookie"]  # this browser's cleared
    notice = await relay.http.get(answer.headers["location"])
    assert "Every session was signed out, in every browser." in notice.text
    # The copied cookie (another browser's, say) no longer opens a page ...
    relay.http.cookies.set(sessions.COOKIE, copied, path="/ui")
    gone = await relay.http.get("/ui/overview")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/ui/sign-in")
    # ... and the admin token signs in again, into the new epoch.
    relay.http.cookies.clear()
    await sign_in(relay)
    assert (await relay.http.get("/ui/overview")).status_code == 200


async def test_sign_out_ends_the_session_on_the_server_a_copied_cookie_too(relay: Relay) -> None:
    """Issue 18 #11: signing out used to clear the cookie in that browser only."""
    await sign_in(relay)
    copied = relay.http.cookies.get(sessions.COOKIE, path="/ui")
    assert copied
    page = await relay.http.get("/ui/settings")
    answer = await relay.http.post("/ui/sign-out", data={"csrf": csrf_of(page)})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/sign-in"
    # The copied cookie (another browser's, or a stolen one) opens nothing more.
    relay.http.cookies.set(sessions.COOKIE, copied, path="/ui")
    gone = await relay.http.get("/ui/overview")
    assert gone.status_code == 303
    assert gone.headers["location"] == "/ui/sign-in?next=%2Fui%2Foverview"
    # Other sessions live on: signing out is not signing out everywhere.
    relay.http.cookies.clear()
    await sign_in(relay)
    assert (await relay.http.get("/ui/overview")).status_code == 200


async def test_300_wrong_sign_ins_answer_429_and_the_token_still_signs_in(relay: Relay) -> None:
    """Issue 18 #3: wrong tokens from one address are limited; the right one is not, so
    failing from an address cannot lock the admin out."""
    limit = relay.runtime.settings.auth_failure_limit
    answers = [
        await relay.http.post("/ui/sign-in", data={"token": f"guess-{i}", "next": "/ui"})
        for i in range(300)
    ]
    assert [a.status_code for a in answers] == [401] * limit + [429] * (300 - limit)
    limited = answers[-1]
    assert 0 < int(limited.headers["retry-after"]) <= relay.runtime.settings.auth_failure_window_s
    assert "Too many wrong tokens from this address" in limited.text
    assert "set-cookie" not in limited.headers
    assert limited.headers["content-security-policy"] == HEADERS["content-security-policy"]
    signed_in = await sign_in(relay)
    assert signed_in.status_code == 303 and "set-cookie" in signed_in.headers
    assert (await relay.http.get("/ui/overview")).status_code == 200
    # An empty token guesses nothing: the form again, 401, not counted as a guess.
    empty = await relay.http.post("/ui/sign-in", data={"token": ""})
    assert empty.status_code == 401


async def test_a_sign_in_form_over_its_cap_is_refused_unread(relay: Relay) -> None:
    """Issue 18 #2: the sign-in form is small; 262,000 fields are refused, not parsed."""
    body = b"a=b&" * 262_000
    answer = await relay.http.post(
        "/ui/sign-in", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 413 and "at most 8192 bytes" in answer.text
    many = "&".join(f"f{i}=x" for i in range(SIGN_IN_MAX_FIELDS + 1))
    answer = await relay.http.post(
        "/ui/sign-in", content=many, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 400 and f"more than {SIGN_IN_MAX_FIELDS} parameters" in answer.text
