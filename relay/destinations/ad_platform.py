"""What ad platforms' destinations share by default: an HTTP API whose transport errors are
retried (`classify_transport_error`), and a test mode a pixel's test event code turns on.
A platform's class (e.g. relay/destinations/meta/) inherits these and overrides any."""

import httpx

from relay.destinations.classify import Classification, classify_transport_error
from relay.domain.models import Pixel


class AdPlatform:
    transport_errors: tuple[type[Exception], ...] = (httpx.HTTPError,)

    def classify_failure(self, error: Exception) -> Classification:
        return classify_transport_error(error)

    def test_mode(self, config: Pixel) -> bool:
        return bool(config.test_event_code)
