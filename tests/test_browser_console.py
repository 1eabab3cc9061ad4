"""The console in a real browser (Chromium, tests/browser.py): a page without a session
leads to sign-in and back; a failed fire, explained, is redelivered by clicking its button
and the page follows the redelivery to its end by itself; dates in the logs stay on one
line; a form sent without its CSRF token is refused."""

import asyncio
from urllib.parse import urlsplit

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chromium
from tests.buyer import Buyer
from tests.harness import ADMIN_TOKEN, Relay, failed_conversions, meta_event_ids
from tests.platform_server import Scripted
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


def _redeliver_in_browser(base: str, conversion_id: str) -> tuple[str, str, str, str]:
    """Sign in on the way to the conversion, click its Redeliver button, and wait, never
    reloading: the page follows the redelivery by itself. The page the browser landed on
    after sign-in, the text before, while the redelivery ran and after it ended."""
    with chromium() as browser:
        page = f"{base}/ui/conversions/{conversion_id}"
        landed = _sign_in_from(browser, page)
        before = browser.find_element(By.TAG_NAME, "body").text
        button = browser.find_element(
            By.XPATH, "//button[normalize-space()='Redeliver the 1 failed send']"
        )
        button.click()
        WebDriverWait(browser, 20).until(expected_conditions.url_contains("redelivery="))
        body = browser.find_element(By.TAG_NAME, "body")
        running = body.text
        done = expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), "COMPLETED")
        try:  # no refresh() here: the page's meta refresh reloads it
            WebDriverWait(browser, 30).until(expected_conditions.staleness_of(body))
            WebDriverWait(browser, 30).until(done)
        except TimeoutException:
            text = browser.find_element(By.TAG_NAME, "body").text
            raise AssertionError(f"the page did not follow the redelivery: {text}") from None
        return landed, before, running, browser.find_element(By.TAG_NAME, "body").text


def _log_dates_in_a_narrow_column(base: str) -> tuple[int, int]:
    """How many lines the newest Pixel logs row's date takes once its table is squeezed
    (fixed layout, 400 px for its nine columns, as a narrow window would), with the
    stylesheet's rule, then with `white-space: normal` put back on its cell."""
    with chromium() as browser:
        Buyer(browser, base).sign_in("/ui/pixel-logs")
        browser.execute_script(
            "const t = document.querySelector('.list');"
            "t.style.tableLayout = 'fixed'; t.style.width = '400px';"
        )
        time = "document.querySelector('.list tbody time')"
        lines = f"return {time}.getClientRects().length"
        kept = int(browser.execute_script(lines))
        browser.execute_script(
            f"{time}.style.whiteSpace = 'normal';{time}.parentElement.style.whiteSpace = 'normal';"
        )
        return kept, int(browser.execute_script(lines))


async def test_a_buyer_signs_in_and_redelivers_a_failed_fire(relay: Relay) -> None:
    pixel, [conversion_id] = await failed_conversions(relay)
    # The redelivery's request is answered 1 s late (Meta's timeout: 1.5 s), so the page
    # the button leads to shows it running.
    relay.platforms.script("meta", pixel["platform_pixel_id"], Scripted(delay_s=1.0))
    async with serving(relay.runtime) as base:
        # Selenium blocks: it runs in a thread while the server answers on this loop.
        landed, before, running, after = await asyncio.to_thread(
            _redeliver_in_browser, base, conversion_id
        )
        one_line, unstyled = await asyncio.to_thread(_log_dates_in_a_narrow_column, base)
    assert landed == f"/ui/conversions/{conversion_id}"  # back where the buyer was going
    assert "failed" in before and ADMIN_TOKEN not in before
    assert "refused the pixel's access token" in before and "Paste a new access token" in before
    assert "RUNNING" in running and "This page follows it" in running
    assert "COMPLETED" in after and "delivered" in after and "follows it" not in after
    assert [status for _, status in meta_event_ids(relay, pixel)] == [400, 200]
    # A date in the logs stays on one line; without the rule it would wrap.
    assert one_line == 1 and unstyled > 1


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
