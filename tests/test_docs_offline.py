"""`/docs` and `/redoc` work without internet: every asset they load is served by Relay.
They, and the codec session's form, may not be framed, and run no script but their own."""

import asyncio
import base64
import hashlib
import re
import time
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chromium
from tests.harness import Relay
from tests.served import serving

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


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/codec/session"])
async def test_pages_refuse_framing_and_foreign_scripts(relay: Relay, page: str) -> None:
    response = await relay.http.get(page)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    directives = response.headers["content-security-policy"].split("; ")
    policy = {name: value for name, _, value in (d.partition(" ") for d in directives)}
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy.get("script-src", "")
    # Swagger UI's one inline script runs by its hash, and nothing else inline does.
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    hashes = {
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in inline
    }
    assert hashes == set(re.findall(r"'sha256-[^']+'", policy.get("script-src", "")))
    assert bool(inline) == (page == "/docs")


async def test_the_codec_session_form_answers_its_refusals_with_the_same_headers(
    relay: Relay,
) -> None:
    response = await relay.http.post("/codec/session", data={"token": "wrong"})
    assert response.status_code in (401, 429)
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def _violations(url: str, ready: str) -> tuple[str, list[str]]:
    """The page's text once `ready` shows, and every Content-Security-Policy violation."""
    with chromium() as browser:
        browser.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument",
            {
                "source": "window.cspViolations = []; document.addEventListener("
                "'securitypolicyviolation', e => window.cspViolations.push("
                "e.violatedDirective + ' ' + e.blockedURI));"
            },
        )
        browser.get(url)
        shown = WebDriverWait(browser, 30).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ready))
        )
        text = shown.text
        time.sleep(1)  # what the page loads after its first render
        return text, list(browser.execute_script("return window.cspViolations"))


@pytest.mark.parametrize(("page", "ready"), [("/docs", ".info .title"), ("/redoc", "h1")])
async def test_the_docs_render_under_their_policy_in_chromium(
    relay: Relay, page: str, ready: str
) -> None:
    async with serving(relay.runtime) as base:
        text, violations = await asyncio.to_thread(_violations, f"{base}{page}", ready)
    assert text.startswith("Relay"), text
    # Nothing of Relay's is refused (scripts, styles, the document, workers); what is, is on
    # another host (ReDoc's badge asks cdn.redoc.ly for its logo) and stays unloaded.
    hosts = {urlsplit(violation.split(" ", 1)[1]).netloc for violation in violations}
    assert "" not in hosts and urlsplit(base).netloc not in hosts, violations
