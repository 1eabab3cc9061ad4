"""Signing in to the console (/ui) as a browser would, for the console's tests."""

import re
from typing import Any

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


async def signed_in(relay: Relay, path: str = "/ui/campaigns") -> str:
    """Sign in; the CSRF token of the page at `path`."""
    await sign_in(relay)
    page = await relay.http.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page)


async def submit(relay: Relay, path: str, **form: str) -> httpx.Response:
    """Post a console form as the browser does, without following its redirect."""
    return await relay.http.post(path, data=form, follow_redirects=False)


async def api_json(relay: Relay, path: str) -> Any:
    """What the JSON API holds at `path` (the console's writes are checked through it)."""
    answer = await relay.http.get(path, headers=relay.admin)
    assert answer.status_code == 200, answer.text
    return answer.json()


def error_of(page: httpx.Response, field: str) -> str:
    """The message shown next to `field`, which names it as its description."""
    found = re.search(
        rf'<span class="error" id="{field}-error" role="alert">([^<]*)</span>', page.text
    )
    assert found, page.text
    assert f'name="{field}"' in page.text and f'aria-describedby="{field}-error"' in page.text
    return found.group(1)
