"""A media buyer in a real browser (tests/browser.py): what they click and type in the
console, step by step, for tests/test_browser_buyer.py. Each method blocks (selenium), so
the tests run them in a thread while Relay answers on the test's event loop."""

import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.harness import ADMIN_TOKEN

WAIT_S = 20
_CAMPAIGN_PATH = re.compile(r"/ui/campaigns/(cmp_[A-Za-z0-9_-]+)$")


class Buyer:
    """One signed-in browser on the console at `base`."""

    def __init__(self, browser: WebDriver, base: str) -> None:
        self.browser, self.base = browser, base
        self.screenshots = os.environ.get("RELAY_SCREENSHOTS")

    def text(self) -> str:
        return self.browser.find_element(By.TAG_NAME, "body").text

    def open(self, path: str) -> None:
        self.browser.get(self.base + path)

    def wait_for_path(self, pattern: str) -> str:
        """Wait until the browser's path matches `pattern`; the path."""
        try:
            WebDriverWait(self.browser, WAIT_S).until(
                lambda b: re.search(pattern, urlsplit(b.current_url).path)
            )
        except TimeoutException:
            message = f"not at {pattern}: {self.browser.current_url}\n{self.text()}"
            raise AssertionError(message) from None
        return urlsplit(self.browser.current_url).path

    def fill(self, form: WebElement, fields: dict[str, str]) -> None:
        """Type or choose each field's value, by the field's name."""
        for name, value in fields.items():
            field = form.find_element(By.NAME, name)
            if field.tag_name == "select":
                Select(field).select_by_value(value)
            elif field.get_attribute("type") == "checkbox":
                if field.is_selected() != (value == "on"):
                    field.click()
            else:
                field.clear()
                field.send_keys(value)

    def submit(self, form_id: str, fields: dict[str, str], button: str | None = None) -> None:
        form = self.browser.find_element(By.ID, form_id)
        self.fill(form, fields)
        selector = "button[type=submit]" if button is None else f"button[value='{button}']"
        self.click_and_wait(form.find_element(By.CSS_SELECTOR, selector))

    def click_and_wait(self, element: WebElement) -> None:
        """Click a link or a form's button; wait until the next page has replaced this one."""
        page = self.browser.find_element(By.TAG_NAME, "html")
        element.click()
        wait = WebDriverWait(self.browser, WAIT_S)
        wait.until(expected_conditions.staleness_of(page))
        # The next page whole (a redirect's target included), before anything is found on it.
        wait.until(lambda b: b.execute_script("return document.readyState") == "complete")

    def follow(self, link_text: str) -> None:
        """Follow the first link whose text holds `link_text`."""
        self.click_and_wait(self.browser.find_element(By.PARTIAL_LINK_TEXT, link_text))

    def sign_in(self, start: str = "/ui") -> None:
        """Open the console, land on sign-in, sign in with the admin token."""
        self.open(start)
        self.wait_for_path("/ui/sign-in$")
        self.browser.find_element(By.NAME, "token").send_keys(ADMIN_TOKEN)
        self.click_and_wait(
            self.browser.find_element(By.CSS_SELECTOR, "form.sign-in button[type=submit]")
        )

    def copy(self, button_for: str) -> str:
        """Click the copy button for the element `button_for` names; what the clipboard holds."""
        self.browser.execute_cdp_cmd(
            "Browser.grantPermissions",
            {"origin": self.base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
        )
        self.browser.find_element(By.CSS_SELECTOR, f"button[data-copy='{button_for}']").click()
        WebDriverWait(self.browser, WAIT_S).until(lambda b: "Copied" in self.text())
        copied: str = self.browser.execute_async_script(
            "navigator.clipboard.readText().then(arguments[0], e => arguments[0]('!' + e))"
        )
        assert not copied.startswith("!"), copied
        return copied

    def click_through(self, campaign_id: str) -> str:
        """Follow the campaign's tracking link as a visitor would; the click ID the offer
        page receives."""
        self.open(f"/c/{campaign_id}")
        WebDriverWait(self.browser, WAIT_S).until(lambda b: "cid=" in b.current_url)
        return parse_qs(urlsplit(self.browser.current_url).query)["cid"][0]

    def campaign_id(self) -> str:
        found = _CAMPAIGN_PATH.search(self.wait_for_path(_CAMPAIGN_PATH.pattern))
        assert found
        return found.group(1)

    def until_text(self, wanted: str, refresh_s: float = 0.5, tries: int = 60) -> str:
        """Reload the page until it shows `wanted`; the page's text."""
        for _ in range(tries):
            if wanted in (page := self.text()):
                return page
            time.sleep(refresh_s)
            self.browser.refresh()
        raise AssertionError(f"{wanted!r} never showed:\n{self.text()}")

    def screenshot(self, name: str) -> None:
        """With RELAY_SCREENSHOTS set to a folder, the page as `name`.png there (docs/console.md's
        screenshots come from here: real data, a real browser)."""
        if self.screenshots:
            height = self.browser.execute_script("return document.documentElement.scrollHeight")
            self.browser.set_window_size(1280, min(max(int(height) + 140, 600), 1800))
            self.browser.save_screenshot(str(Path(self.screenshots) / f"{name}.png"))
            self.browser.set_window_size(1280, 900)
