"""What ad platforms' destinations share by default: an HTTP API whose transport errors are
retried (`classify_transport_error`), and a test mode a pixel's test event code turns on.
A platform's class (e.g. relay/destinations/meta/) inherits these and overrides any."""

import httpx

from relay.destinations.base import SettingField
from relay.destinations.classify import Classification, classify_transport_error
from relay.domain.models import Pixel

# The test mode both Meta and TikTok switch on per pixel (`test_mode` below reads it).
TEST_EVENT_CODE = SettingField(
    "test_event_code",
    "Test event code",
    help="From Events Manager's Test events tab; events then show there and are not "
    "counted. Leave empty in production.",
    placeholder="TEST12345",
    unset="none (live)",
)


class AdPlatform:
    transport_errors: tuple[type[Exception], ...] = (httpx.HTTPError,)

    def classify_failure(self, error: Exception) -> Classification:
        return classify_transport_error(error)

    def test_mode(self, config: Pixel) -> bool:
        return bool(config.test_event_code)
