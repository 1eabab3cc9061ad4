"""Failed credentials counted per client address (relay/core/rate_limit.py, issue 18 #3): past the
limit in a window, 429 with the wait; windows end; IPv6 counts per /64; memory is bounded."""

from relay.core.rate_limit import FailureLimiter, FailureLimits, client_key
from relay.core.settings import Settings


def test_failures_past_the_limit_are_refused_until_the_window_ends() -> None:
    limiter = FailureLimiter(limit=3, window_s=60, max_clients=100)
    assert [limiter.failed("198.51.100.7", 1000 + i) for i in range(3)] == [None, None, None]
    # The fourth failure, 3 s into the window: wait the 57 s left.
    assert limiter.failed("198.51.100.7", 1003) == 57
    assert limiter.failed("198.51.100.7", 1059.5) == 1  # at least 1 s, rounded up
    # Another address has its own count.
    assert limiter.failed("198.51.100.8", 1010) is None
    # The window ended: a new one starts with this failure.
    assert limiter.failed("198.51.100.7", 1060) is None


def test_an_ipv6_client_counts_as_its_64_block() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:ffff::9") == client_key("2001:db8:1:2::1")
    assert client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("testclient") == "testclient"  # not an address: as it is
    limiter = FailureLimiter(limit=1, window_s=60, max_clients=100)
    assert limiter.failed("2001:db8::1", 0) is None
    assert limiter.failed("2001:db8::2", 1) == 59  # the same /64


def test_memory_is_bounded_forgetting_ended_windows_first_then_the_oldest() -> None:
    limiter = FailureLimiter(limit=1, window_s=60, max_clients=3)
    for i, address in enumerate(("192.0.2.1", "192.0.2.2", "192.0.2.3")):
        limiter.failed(address, i)
    assert len(limiter) == 3
    limiter.failed("192.0.2.4", 10)  # full, none ended: the oldest (.1) is forgotten
    assert len(limiter) == 3
    assert limiter.failed("192.0.2.2", 11) == 50  # .2 is remembered: its 2nd failure
    assert limiter.failed("192.0.2.1", 12) is None  # .1 was forgotten: a new window
    # Windows that ended go first, whatever the count.
    for i in range(10_000):
        limiter.failed(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1000 + i)
    assert len(limiter) == 3


def test_the_limits_come_from_the_settings() -> None:
    settings = Settings(auth_failure_limit=5, auth_failure_window_s=30, auth_failure_clients=7)
    limits = FailureLimits.from_settings(settings)
    for limiter in (limits.admin, limits.postback_key):
        assert (limiter.limit, limiter.window_s, limiter.max_clients) == (5, 30, 7)
    assert limits.admin is not limits.postback_key
    defaults = Settings()
    assert (defaults.auth_failure_limit, defaults.auth_failure_window_s) == (20, 300)
    assert defaults.auth_failure_clients == 10_000
