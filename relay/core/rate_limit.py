"""Failed credentials counted per client address: past `limit` failures in a window, a
wrong postback key, admin token or codec session answers 429 with `Retry-After`.

Failures are counted and refused, never successes: a right key or token from a limited
address still passes, so an attacker cannot lock a real network or the admin out by failing
from the address they share (a NAT, or a proxy missing from RELAY_TRUSTED_PROXIES, which
makes every client one address). Guessing stays hopeless (postback keys and the admin token
are at least 32 random characters); the limit tells a misbehaving client to back off, and
makes a guessing run visible (`relay_auth_failures`).

A window is fixed: it starts at an address's first failure and lasts `window_s`. At most
`max_clients` addresses are remembered, the windows that ended forgotten first, then the
oldest: memory stays bounded whatever the number of addresses (a flood of addresses only
forgets counts, it never refuses anyone). An IPv6 client counts as its /64, the block one
host is usually given. Pure and synchronous: no I/O, no lock (one event loop calls it)."""

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass

from relay.core.errors import RelayError
from relay.core.settings import Settings


class TooManyFailures(RelayError):
    """429: this address presented too many wrong credentials; retry after `retry_after_s`."""

    status_code = 429
    code = "too_many_failures"

    def __init__(self, message: str, param: str | None, retry_after_s: int) -> None:
        super().__init__(message, param)
        self.retry_after_s = retry_after_s


def client_key(address: str) -> str:
    """The key failures are counted under: the address, an IPv6 one as its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


@dataclass
class _Window:
    started: float
    failures: int = 0


class FailureLimiter:
    """At most `limit` failures per client address in a window of `window_s` seconds."""

    def __init__(self, limit: int, window_s: float, max_clients: int) -> None:
        self.limit, self.window_s, self.max_clients = limit, window_s, max_clients
        # Oldest window first: a window that starts again moves to the end.
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def failed(self, address: str, now: float) -> int | None:
        """Count one failure of `address` at `now` (monotonic seconds): None while it is
        within the limit, else the whole seconds until its window ends (at least 1)."""
        key = client_key(address)
        window = self._windows.get(key)
        if window is None or now >= window.started + self.window_s:
            if window is not None:
                del self._windows[key]
            self._make_room(now)
            window = self._windows[key] = _Window(now)
        window.failures += 1
        if window.failures <= self.limit:
            return None
        return max(1, math.ceil(window.started + self.window_s - now))

    def _make_room(self, now: float) -> None:
        """Forget the windows that ended, oldest first, then the oldest until one fits."""
        windows = self._windows
        while windows:
            oldest = next(iter(windows.values()))
            if now < oldest.started + self.window_s and len(windows) < self.max_clients:
                return
            windows.popitem(last=False)


@dataclass
class FailureLimits:
    """The process's limiters: the admin token (console sign-in, bearer, codec session:
    one budget, as they guess one secret) and postback keys."""

    admin: FailureLimiter
    postback_key: FailureLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> "FailureLimits":
        def limiter() -> FailureLimiter:
            return FailureLimiter(
                settings.auth_failure_limit,
                settings.auth_failure_window_s,
                settings.auth_failure_clients,
            )

        return cls(admin=limiter(), postback_key=limiter())
