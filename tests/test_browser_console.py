"""The console in a real browser (Chromium, tests/browser.py): a page without a session
leads to sign-in and back; a failed fire is redelivered by clicking its button; a form
sent without its CSRF token is refused."""

import asyncio
import time
from urllib.parse import urlsplit

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chromium
from tests.buyer import Buyer
from tests.harness import ADMIN_TOKEN, Relay, failed_conversions, meta_event_ids
from tests.served import serving


def _sign_in_from(browser: WebDriver, page: str) -> str:
    """Open a console page without a session, sign in on the form it leads to; the path
    the browser lands on afterwards."""
    browser.get(page)
    WebDriverWait(browser, 20).until(expected_conditions.url_contains("/ui/sign-in"))
    assert "next=" in browser.current_url
    browser.find_element(By.NAME, "token").send_keys(ADMIN_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form.sign-in button[type=submit]").click()
    try:
        WebDriverWait(browser, 20).until_not(expected_conditions.url_contains("/ui/sign-in"))
    except TimeoutException:
        page = browser.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"still on sign-in: {page}") from None
    return urlsplit(browser.current_url).path


def _redeliver_in_browser(base: str, conversion_id: str) -> tuple[str, str, str]:
    with chromium() as browser:
        page = f"{base}/ui/conversions/{conversion_id}"
        landed = _sign_in_from(browser, page)
        before = browser.find_element(By.TAG_NAME, "body").text
        button = browser.find_element(By.XPATH, "//button[starts-with(., 'Redeliver all')]")
        button.click()
        WebDriverWait(browser, 20).until(expected_conditions.url_contains("redelivery="))
        # The page shows the redelivery; reload it until the redelivery has finished.
        for _ in range(60):
            if "COMPLETED" in browser.find_element(By.TAG_NAME, "body").text:
                break
            time.sleep(0.5)
            browser.refresh()
        return landed, before, browser.find_element(By.TAG_NAME, "body").text


async def test_a_buyer_signs_in_and_redelivers_a_failed_fire(relay: Relay) -> None:
    pixel, [conversion_id] = await failed_conversions(relay)
    async with serving(relay.runtime) as base:
        # Selenium blocks: it runs in a thread while the server answers on this loop.
        landed, before, after = await asyncio.to_thread(_redeliver_in_browser, base, conversion_id)
    assert landed == f"/ui/conversions/{conversion_id}"  # back where the buyer was going
    assert "failed" in before and ADMIN_TOKEN not in before
    assert "COMPLETED" in after and "delivered" in after
    assert [status for _, status in meta_event_ids(relay, pixel)] == [400, 200]


def _forged_form(base: str) -> tuple[str, str]:
    """Sign in, then send the New network form with its CSRF field emptied; the page the
    answer shows, and what the list shows afterwards."""
    with chromium() as browser:
        buyer = Buyer(browser, base)
        buyer.sign_in("/ui/networks")
        browser.execute_script("document.querySelector('#new-network [name=csrf]').value = ''")
        buyer.submit("new-network", {"name": "Forged without CSRF"})
        without_csrf = buyer.text()
        buyer.open("/ui/networks")
        return without_csrf, buyer.text()


async def test_a_change_without_the_csrf_token_is_refused_in_the_browser(relay: Relay) -> None:
    async with serving(relay.runtime) as base:
        refused, listed = await asyncio.to_thread(_forged_form, base)
    assert "403" in refused and "CSRF token is missing or wrong" in refused
    assert "Forged without CSRF" not in listed
    networks = (await relay.http.get("/api/networks", headers=relay.admin)).json()
    assert all(n["name"] != "Forged without CSRF" for n in networks)
