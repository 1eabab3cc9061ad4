"""`relay up` serves its Temporal UI under its own origin (/ui/temporal/) to the console's
signed-in users, and the codec endpoint takes the console's session: the UI decodes
payloads with no setting in the browser (issue 22 #2)."""

import base64
import re
from pathlib import Path

import httpx

from tests.embedded import ADMIN_TOKEN, EmbeddedRelay
from tests.platform_server import PlatformServer

PAGE = {"Accept": "text/html,application/xhtml+xml"}


def _sign_in(client: httpx.Client) -> None:
    signed = client.post("/ui/sign-in", data={"token": ADMIN_TOKEN})
    assert signed.status_code == 303, signed.text
    assert "relay_console" in client.cookies


def test_the_signed_in_console_user_gets_the_temporal_ui_with_its_codec(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    relay.start()
    try:
        with httpx.Client(base_url=relay.url, timeout=30) as client:
            # Signed out: a page goes to the console's sign-in, anything else is a 401.
            page = client.get("/ui/temporal/", headers=PAGE)
            assert page.status_code == 303
            assert page.headers["location"] == "/ui/sign-in?next=%2Fui%2Ftemporal%2F"
            assert client.get("/ui/temporal/api/v1/settings").status_code == 401
            plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}}
            payload = {**plain, "data": base64.b64encode(b'"hello"').decode()}
            refused = client.post("/ui/codec/encode", json={"payloads": [payload]})
            assert refused.status_code == 401

            _sign_in(client)
            page = client.get("/ui/temporal/", headers=PAGE)
            assert page.status_code == 200, page.text[:500]
            assert "/ui/temporal/_app/" in page.text  # the UI's own page, from the dev server
            script = re.search(r'"(/ui/temporal/_app/immutable/[^"]+\.js)"', page.text)
            assert script is not None, page.text[:500]
            # Its code needs no session (public, no data); its data does (above: 401).
            assert httpx.get(relay.url + script.group(1), timeout=10).status_code == 200
            for climbing in ("../../api/v1/namespaces", "%2e%2e/%2e%2e/api/v1/namespaces"):
                sneaked = httpx.get(f"{relay.url}/ui/temporal/_app/immutable/{climbing}")
                assert sneaked.status_code == 401, (climbing, sneaked.status_code)
            settings = client.get("/ui/temporal/api/v1/settings").json()
            assert settings["Codec"]["Endpoint"] == f"{relay.url}/ui/codec"  # the same origin
            namespaces = client.get("/ui/temporal/api/v1/namespaces")
            assert namespaces.status_code == 200, namespaces.text[:500]

            # The console's session is enough for the codec: encrypted, then decrypted back.
            encoded = client.post("/ui/codec/encode", json={"payloads": [payload]})
            assert encoded.status_code == 200, encoded.text
            sealed = encoded.json()["payloads"][0]
            assert sealed["data"] != payload["data"]
            decoded = client.post("/ui/codec/decode", json={"payloads": [sealed]})
            assert decoded.status_code == 200, decoded.text
            assert decoded.json()["payloads"][0]["data"] == payload["data"]
    finally:
        assert relay.interrupt() == 0
