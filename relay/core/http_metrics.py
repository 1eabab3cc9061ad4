"""The API's series about clients on the wire: connections the server closed for being too
slow or too many, and requests whose client went away before its body arrived. Neither is
an error of Relay's: they are counted here, not as 5xx."""

from prometheus_client import Counter

from relay.core.metrics import REGISTRY

CONNECTIONS_CLOSED = Counter(
    "relay_http_connections_closed",
    "Connections the API closed on its own: head_timeout (the request line and headers "
    "not in within RELAY_HTTP_HEAD_TIMEOUT_S), body_timeout (the body not in within "
    "RELAY_HTTP_BODY_TIMEOUT_S), head_too_large, over_capacity (refused at "
    "RELAY_HTTP_MAX_CONNECTIONS) and idle_evicted (an idle keep-alive connection closed to "
    "make room for a new one).",
    ["reason"],
    registry=REGISTRY,
)
CLIENTS_GONE = Counter(
    "relay_http_clients_gone",
    "Requests, by route, whose client closed the connection (or was closed for being too "
    "slow) before the body was read: not answered, and not counted as errors.",
    ["route"],
    registry=REGISTRY,
)
