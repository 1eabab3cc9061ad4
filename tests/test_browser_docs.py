"""In a real browser: the API docs render with nothing loaded from another host."""

import asyncio
from urllib.parse import urlsplit

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chromium
from tests.harness import Relay
from tests.served import serving


def _render(url: str) -> tuple[str, list[str]]:
    """The page's Swagger UI title once rendered, and every resource the page loaded."""
    with chromium() as browser:
        browser.get(url)
        title = WebDriverWait(browser, 30).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".info .title"))
        )
        loaded = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        return title.text, list(loaded)


async def test_the_docs_render_offline_in_chromium(relay: Relay) -> None:
    async with serving(relay.runtime) as base:
        # Selenium blocks: it runs in a thread while the server answers on this loop.
        title, loaded = await asyncio.to_thread(_render, f"{base}/docs")
    assert title.startswith("Relay")
    assert any(name.endswith("/openapi.json") for name in loaded), loaded
    hosts = {urlsplit(name).netloc for name in loaded}
    assert hosts == {urlsplit(base).netloc}, hosts
