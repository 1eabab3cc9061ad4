"""Signing in to the console (/ui) as a browser would, for the console's tests."""

import re

import httpx

from tests.harness import ADMIN_TOKEN, Relay

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(relay: Relay, next_path: str = "/ui/conversions") -> httpx.Response:
    """Sign in with the admin token; the client keeps the session cookie."""
    return await relay.http.post(
        "/ui/sign-in", data={"token": ADMIN_TOKEN, "next": next_path}, follow_redirects=False
    )


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF.search(page.text)
    assert found, page.text
    return found.group(1)
