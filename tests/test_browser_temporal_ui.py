"""In a real browser, signed in to the console only: `relay up`'s Temporal UI under
/ui/temporal/ shows a conversion's payloads decoded, with no codec setting in the browser."""

from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chromium
from tests.embedded import ADMIN, ADMIN_TOKEN, EmbeddedRelay, create, wait_for
from tests.platform_server import PlatformServer


def test_a_conversion_reads_decoded_in_the_temporal_ui(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    relay.start()
    try:
        network = create(relay.url, "/api/networks", {"name": "Acme"})
        body = {"name": "Spring", "offer_url": "https://shop.example/?cid={click_id}"}
        campaign = create(relay.url, "/api/campaigns", body)
        redirect = httpx.get(f"{relay.url}/c/{campaign['id']}?sub1=spring-banner-7", timeout=10)
        click_id = redirect.headers["location"].rsplit("=", 1)[1]
        query = {"key": network["postback_key"], "click_id": click_id, "txid": "ORDER-77"}
        answer = httpx.get(f"{relay.url}/postback", params=query, timeout=10).json()
        conversion_id = answer["conversion_id"]

        def finished() -> bool:
            path = f"{relay.url}/api/conversions/{conversion_id}"
            found = httpx.get(path, headers=ADMIN, timeout=10)
            return found.status_code == 200 and found.json()["delivery_state"] != "pending"

        wait_for(finished, 60, "the conversion's run to end")
        with chromium() as browser:
            browser.get(f"{relay.url}/ui/sign-in")
            browser.find_element(By.NAME, "token").send_keys(ADMIN_TOKEN)
            browser.find_element(By.CSS_SELECTOR, "form.sign-in button[type=submit]").click()
            WebDriverWait(browser, 30).until(lambda b: "/ui/sign-in" not in b.current_url)
            page = f"{relay.url}/ui/temporal/namespaces/default/workflows/{conversion_id}"
            browser.get(page)
            # The run's input, decrypted through /ui/codec: the txid is inside it.
            WebDriverWait(browser, 60).until(lambda b: "ORDER-77" in b.page_source)
            assert "Codec Server could not connect" not in browser.page_source
    finally:
        assert relay.interrupt() == 0
