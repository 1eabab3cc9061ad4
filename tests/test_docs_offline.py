"""`/docs` and `/redoc` work without internet: every asset they load is served by Relay."""

import re
from urllib.parse import urlsplit

import pytest

from tests.harness import Relay

# src="..." and href="..." attributes, and the `url: '...'` / spec-url the pages fetch.
_REFERENCES = re.compile(r"""(?:src|href|url|spec-url)\s*[=:]\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_assets_come_from_relay(relay: Relay, page: str) -> None:
    response = await relay.http.get(page)
    assert response.status_code == 200
    html = response.text
    references = set(_REFERENCES.findall(html))
    assert "/openapi.json" in references
    assert any(r.endswith(".js") for r in references), references
    # Nothing on another host, not even a favicon or a font.
    assert "//" not in "".join(references), references
    assert not re.search(r"https?://", html), "the page names an external URL"
    for reference in references:
        assert not urlsplit(reference).netloc, reference
        asset = await relay.http.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference


async def test_swagger_ui_asks_no_validator(relay: Relay) -> None:
    """Swagger UI would send the document to validator.swagger.io for its badge."""
    html = (await relay.http.get("/docs")).text
    assert '"validatorUrl": null' in html
