"""What `relay up` prints once up: the Temporal UI under Relay's origin, and each platform
whose URL is overridden (a stand-in), so a walkthrough's sends are not a surprise."""

from pathlib import Path

from relay.core.settings import Settings
from relay.process.banner import banner, origin


def test_the_banner_names_overridden_platform_urls_and_the_ui() -> None:
    settings = Settings(
        data_dir=Path("relay-data"),
        http_port=8123,
        meta_base_url="http://127.0.0.1:9999",
    )
    text = banner(settings, f"{origin(settings)}/ui/temporal/", "kept in secrets.json")
    assert "Temporal UI:  http://127.0.0.1:8123/ui/temporal/   (signed in" in text
    assert "Sends to:     Meta -> http://127.0.0.1:9999 (RELAY_META_BASE_URL)" in text
    assert "TikTok" not in text  # its own URL: not listed


def test_no_override_no_line_and_a_public_url_is_the_origin() -> None:
    settings = Settings(data_dir=Path("relay-data"), public_url="https://relay.example/")
    assert origin(settings) == "https://relay.example"
    assert "Sends to" not in banner(settings, None, "x")
