"""An httpx client whose connections go only where relay/destinations/addresses.py allows.

The check sits where the connection is opened: the host is resolved, every address it
resolves to is checked, and the socket connects to a checked address, so a name that
answers with a private address (or a different one the second time) is refused. TLS still
verifies the certificate against the name in the URL.
"""

import socket
from collections.abc import Iterable, Sequence
from ipaddress import ip_address

import anyio
import httpcore
import httpx

from relay.destinations.addresses import Address, Network, check_resolved

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


async def resolve(host: str, port: int, limit_s: float | None) -> list[Address]:
    """Every address `host` resolves to, in the resolver's order (an IP literal is itself)."""
    try:
        with anyio.fail_after(limit_s):
            found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
    except OSError as exc:  # socket.gaierror: no such name, resolver down
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(ip_address(sockaddr[0]) for *_, sockaddr in found))


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to allowed addresses; never Unix sockets."""

    def __init__(self, allowed: Sequence[Network], inner: httpcore.AsyncNetworkBackend) -> None:
        self._allowed = list(allowed)
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port, timeout)
        check_resolved(host, addresses, self._allowed)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} resolved to no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not a destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool that opens only checked connections.

    httpx takes no network backend, so its pool is replaced by one built the same way with
    the checking backend; proxies from the environment are not used (a proxy would make
    the connection, out of reach of the check)."""

    def __init__(self, allowed: Sequence[Network], limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(allowed, httpcore.AnyIOBackend()),
        )


def checked_client(
    allowed: Sequence[Network], timeout_s: float, headers: dict[str, str]
) -> httpx.AsyncClient:
    """A client for outbound postbacks: checked destinations, no environment proxies,
    no redirects followed (a 3xx is logged as such; a redirect cannot choose the host)."""
    return httpx.AsyncClient(
        transport=CheckedTransport(
            allowed, httpx.Limits(max_connections=100, max_keepalive_connections=20)
        ),
        timeout=httpx.Timeout(timeout_s),
        headers=headers,
        trust_env=False,
    )
