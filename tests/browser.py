"""A real browser for the tests: Debian's Chromium, driven by selenium through Debian's
chromedriver (`apt-get install chromium chromium-driver`; `.ci/run` installs them). Nothing
is downloaded: the driver's path is given, so Selenium Manager never runs. Only loopback
is reachable: every other host goes to a closed proxy port, and Chromium's background
services (updates, sync, safe browsing) are off."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the suite may run as root
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--safebrowsing-disable-auto-update",
    "--window-size=1280,900",
    # Anything but loopback goes to a port nothing listens on.
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1;localhost;[::1]",
)


def _installed() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        reason = "Debian's chromium and chromium-driver are not installed (apt-get install "
        reason += "chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; .ci/run installs them")
        pytest.skip(reason)
    return chromium, driver


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium for the block; skipped (failed under CI) when not installed."""
    binary, driver_path = _installed()
    options = Options()
    options.binary_location = binary
    for flag in _FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
