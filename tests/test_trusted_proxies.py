"""RELAY_TRUSTED_PROXIES takes addresses and networks (issue 9, item 6): inside a container
network the proxy's address is not known in advance, only its network."""

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from api.deps import client_ip
from relay.core.settings import Settings


def _request(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    scope = {"type": "http", "method": "GET", "path": "/c/x", "headers": headers}
    return Request({**scope, "client": (peer, 40000), "query_string": b""})


def test_a_proxy_inside_a_trusted_network_is_believed() -> None:
    proxies = Settings(trusted_proxies=["172.16.0.0/12", "10.1.2.3"]).trusted_proxies
    # The proxy's address is in the network: the visitor is the hop before it.
    assert client_ip(_request("172.18.0.5", "198.51.100.7"), proxies) == "198.51.100.7"
    # Hops added by trusted proxies are skipped, whatever their place in the chain.
    chain = "198.51.100.7, 10.1.2.3, 172.20.0.9"
    assert client_ip(_request("172.18.0.5", chain), proxies) == "198.51.100.7"
    # A peer outside every trusted network is the visitor, whatever it claims.
    assert client_ip(_request("203.0.113.9", "198.51.100.7"), proxies) == "203.0.113.9"
    # A forged, unparsable hop is not taken: the peer stands.
    assert client_ip(_request("172.18.0.5", "not-an-ip"), proxies) == "172.18.0.5"


def test_an_invalid_entry_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(trusted_proxies=["172.16.0.0/33"])
