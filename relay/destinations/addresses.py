"""Where outbound postbacks may go: public addresses only, unless the operator allows more.

A template's URL is chosen by whoever holds the admin token, and the start of each answer is
readable through `/api/postback-logs`: without this check Relay would fetch cloud metadata
(169.254.169.254), services on its own loopback, or anything on the private network.
Templates are checked when saved (a host written as an IP address, in any spelling the
resolver accepts) and every connection is checked on the address it goes to
(relay/destinations/checked_http.py), so a name cannot resolve its way around the rule.
`RELAY_OUTBOUND_ALLOWED_NETWORKS` lists networks allowed anyway (a tracker on the LAN).
"""

import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
ALLOWLIST_SETTING = "RELAY_OUTBOUND_ALLOWED_NETWORKS"

# Special-purpose ranges (IANA registries), most specific first. Listed rather than left to
# `is_global`, which counts multicast, site-local and some IPv6 forms as global, and whose
# answers differ between Python versions.
_NON_PUBLIC: tuple[tuple[Network, str], ...] = tuple(
    (ip_network(cidr), kind)
    for cidr, kind in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address (cloud metadata lives here)"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved or broadcast address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "an IPv4-compatible (deprecated) address"),
        ("100::/64", "a discard-only address"),
        ("2001:db8::/32", "a documentation address"),
        ("fc00::/7", "a unique-local (private) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
# IPv6 forms that carry an IPv4 address, which is what they reach: IPv4-mapped and the
# NAT64 well-known prefix (the last 32 bits), 6to4 (bits 16 to 48).
_MAPPED = (ip_network("::ffff:0:0/96"), ip_network("64:ff9b::/96"))
_SIX_TO_FOUR = ip_network("2002::/16")


class DestinationRefused(Exception):
    """A connection Relay refuses to open; the message names the host and the reason."""


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if any(address in prefix for prefix in _MAPPED):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def refusal(address: Address, allowed: Sequence[Network] = ()) -> str | None:
    """Why Relay will not connect to `address` (e.g. "a loopback address"); None if it may."""
    if any(address in network for network in allowed):
        return None
    if isinstance(address, IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            why = refusal(inner, allowed)
            return None if why is None else f"an IPv6 form of {inner}, {why}"
    for network, kind in _NON_PUBLIC:
        if address in network:
            return kind
    return None if address.is_global else "not a public address"


def literal_address(host: str) -> Address | None:
    """The address a URL host spells without DNS, in any form the resolver reads as one
    (`127.0.0.1`, `::1`, `2130706433`, `0x7f000001`, `0177.1`); None for a name."""
    bare = host.rstrip(".").split("%", 1)[0]  # no trailing root dot, no IPv6 zone
    try:
        return ip_address(bare)
    except ValueError:
        pass
    try:
        # inet_aton reads the decimal, hex, octal and shortened forms getaddrinfo accepts.
        return IPv4Address(socket.inet_aton(bare))
    except (OSError, ValueError):
        return None


def refused_because(host: str, address: Address, allowed: Sequence[Network]) -> str | None:
    """A sentence for the log or a 4xx when `host` (which is `address`) is refused."""
    why = refusal(address, allowed)
    if why is None:
        return None
    spelled = "" if host == str(address) else f" {address},"
    return (
        f"host {host} is{spelled} {why}; outbound postbacks go only to public addresses "
        f"unless {ALLOWLIST_SETTING} allows the network"
    )


def template_destination_problem(template: str, allowed: Sequence[Network]) -> str | None:
    """What is wrong with where a (valid) template points, checked without DNS: a host
    written as an address outside the allowed networks. Names are checked on every send."""
    try:
        host = urlsplit(template).hostname or ""  # macros never sit in the host
    except ValueError:  # template_problems reports it
        return None
    address = literal_address(host)
    return None if address is None else refused_because(host, address, allowed)


def check_resolved(host: str, addresses: Sequence[Address], allowed: Sequence[Network]) -> None:
    """Raise DestinationRefused unless every address `host` resolved to is allowed: a name
    with one private address among public ones is refused, not sent to the public one."""
    for address in addresses:
        problem = refused_because(host, address, allowed)
        if problem is not None:
            raise DestinationRefused(problem)
