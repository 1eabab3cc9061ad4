"""A traffic source's answer to an outbound postback, classified by its HTTP status."""

import httpx

from relay.destinations.addresses import DestinationRefused
from relay.destinations.classify import Classification, classify_transport_error
from relay.domain.models import Verdict


def _status_classification(status: int) -> Classification:
    reason = f"HTTP {status}"
    if 200 <= status < 300:
        return Classification(Verdict.DELIVERED, reason)
    if status in (408, 429) or status >= 500:
        return Classification(Verdict.RETRYABLE, reason)
    if 300 <= status < 400:
        # The sender does not follow redirects, so the traffic source never saw the request.
        reason += " (redirect not followed; point the template at the final URL)"
    elif status < 200:
        reason += " (no final response)"
    return Classification(Verdict.PERMANENT, reason)


def classify_postback(status: int | None, error: Exception | None) -> Classification:
    """Classify one outbound postback attempt by its HTTP status or the exception raised.

    2xx is delivered; 408, 429 and 5xx retry; other statuses are permanent. A status wins
    over an error: the traffic source answered, even if reading the body failed later.
    Timeouts and network errors retry; a destination outside the allowed addresses, a
    request httpx refuses to send and any other exception are permanent. Reasons name the
    exception type (a refused destination its host and address too), never the URL.
    """
    if status is not None:
        return _status_classification(status)
    if error is None:
        return Classification(Verdict.PERMANENT, "no response and no error")
    if isinstance(error, DestinationRefused):
        return Classification(Verdict.PERMANENT, f"destination refused: {error}")
    if isinstance(error, httpx.TransportError | httpx.InvalidURL):
        return classify_transport_error(error)
    if isinstance(error, UnicodeError):  # a host IDNA refuses: no retry mends it
        return Classification(Verdict.PERMANENT, f"request not sendable: {type(error).__name__}")
    return Classification(Verdict.PERMANENT, f"unexpected error: {type(error).__name__}")
