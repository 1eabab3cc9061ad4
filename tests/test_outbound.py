"""Outbound postback templates: validation, expansion, log redaction and verdicts."""

import httpx
import pytest

from relay.destinations.postback.answers import classify_postback
from relay.destinations.postback.template import MACROS, expand, redact_url, template_problems
from relay.domain.models import Verdict

D, R, P = Verdict.DELIVERED, Verdict.RETRYABLE, Verdict.PERMANENT
BASE = "https://ts.example/pb"


# The macros docs/postback-contract.md lists: `{click_id}` ... `{external_id}`, `{sub1}`..`{sub5}`.
DOCUMENTED_MACROS = [
    *("click_id", "conversion_id", "event_id", "payout", "currency", "event", "txid"),
    "external_id",
    *(f"sub{n}" for n in range(1, 6)),
]


def test_every_documented_macro_expands() -> None:
    assert sorted(MACROS) == sorted(DOCUMENTED_MACROS)
    template = BASE + "?" + "&".join(f"{name}={{{name}}}" for name in DOCUMENTED_MACROS)
    values = {name: f"v-{name}" for name in DOCUMENTED_MACROS}
    expected = BASE + "?" + "&".join(f"{name}=v-{name}" for name in DOCUMENTED_MACROS)
    assert template_problems(template) == []
    assert expand(template, values) == expected


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a b", "a%20b"),
        ("a&b=c", "a%26b%3Dc"),
        ("a/b#c?d", "a%2Fb%23c%3Fd"),
        ("1+1%", "1%2B1%25"),
        ("é日本", "%C3%A9%E6%97%A5%E6%9C%AC"),
        ("{payout}", "%7Bpayout%7D"),  # a value is never expanded again
        ("abc-_.~09", "abc-_.~09"),
    ],
)
def test_values_are_percent_encoded(value: str, encoded: str) -> None:
    assert expand(BASE + "/{click_id}?cid={click_id}", {"click_id": value}) == (
        f"{BASE}/{encoded}?cid={encoded}"
    )


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        (BASE + "?cid={click_id}&sum={payout}", {}, BASE + "?cid=&sum="),
        (BASE + "?cid={click_id}&sum={payout}", {"payout": "2.5"}, BASE + "?cid=&sum=2.5"),
        (BASE + "?a=x+y&b=%20&cid={click_id}", {"click_id": "c"}, BASE + "?a=x+y&b=%20&cid=c"),
        (BASE + "?cid={click_id}", {"click_id": "c", "email": "e"}, BASE + "?cid=c"),
        (BASE + "?static=1", {"click_id": "c"}, BASE + "?static=1"),
    ],
)
def test_expand_missing_values_and_literal_text(
    template: str, values: dict[str, str], expected: str
) -> None:
    assert expand(template, values) == expected


@pytest.mark.parametrize(
    "template",
    [
        BASE + "?static=1",
        "http://ts.example",
        "https://ts.example:8443/pb/{event}?cid={click_id}&s1={sub1}#{txid}",
        "https://user:pw@ts.example/pb?cid={click_id}",
        BASE + "?x=" + "a" * (2048 - len(BASE + "?x=")),
    ],
)
def test_usable_templates(template: str) -> None:
    assert template_problems(template) == []


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (BASE + "?cid={clickid}", "unknown macro {clickid}; known: {click_id}, {conversion_id}"),
        (BASE + "?cid={Click_ID}", "unknown macro {Click_ID}"),
        (BASE + "?cid={}", "unknown macro {}"),
        ("ftp://ts.example/pb?cid={click_id}", "not an absolute http(s) URL with a host"),
        ("javascript:alert(1)", "not an absolute http(s) URL with a host"),
        ("/pb?cid={click_id}", "not an absolute http(s) URL with a host"),
        ("https:///pb?cid={click_id}", "not an absolute http(s) URL with a host"),
        ("https://ts.example:99999/pb", "not a valid URL"),
        ("http://[::1/pb", "not a valid URL"),
        ("https://{sub1}/pb", "macros are not allowed in the scheme, host or port"),
        ("https://ts.example:{sub1}/pb", "macros are not allowed in the scheme, host or port"),
        (BASE + "?cid={click_id", "unbalanced brace '{' at position 26"),
        (BASE + "?cid=click_id}", "unbalanced brace '}' at position 34"),
        (BASE + "?cid={{click_id}}", "unbalanced brace '{' at position 26"),
        (BASE + "?cid={click_id}\n", "contains whitespace or control characters"),
        (BASE + "?x=" + "a" * 2048, "longer than 2048 characters"),
    ],
)
def test_template_problems(template: str, problem: str) -> None:
    assert any(found.startswith(problem) for found in template_problems(template))


def test_each_unknown_macro_reported_once() -> None:
    problems = template_problems(BASE + "?a={foo}&b={foo}&c={bar}&d={click_id}")
    assert [p.split(";")[0] for p in problems] == ["unknown macro {foo}", "unknown macro {bar}"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            BASE + "?token=t0k&click_id=c1&payout=2.5",
            BASE + "?token=[REDACTED]&click_id=c1&payout=2.5",
        ),
        (BASE + "?api_key=k&cid=c1", BASE + "?api_key=[REDACTED]&cid=c1"),
        (
            BASE + "?sig=s&Signature=s2&X-Auth=a",
            BASE + "?sig=[REDACTED]&Signature=[REDACTED]&X-Auth=[REDACTED]",
        ),
        (
            BASE + "?PASSWORD=p&client_secret=s&API%5FKEY=k",
            BASE + "?PASSWORD=[REDACTED]&client_secret=[REDACTED]&API%5FKEY=[REDACTED]",
        ),
        (
            BASE + "?click_id=a%20b&payout=1.5&event=sale",
            BASE + "?click_id=a%20b&payout=1.5&event=sale",
        ),
        (
            "https://user:pw@ts.example:8443/pb?click_id=c1",
            "https://ts.example:8443/pb?click_id=c1",
        ),
        (BASE + "?click_id=c1#token=t0k", BASE + "?click_id=c1"),
        (BASE + "?token&cid=c1", BASE + "?token&cid=c1"),
        (BASE, BASE),
        ("http://[::1/pb?token=t0k", "[REDACTED]"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("status", "verdict", "reason"),
    [
        (200, D, "HTTP 200"),
        (204, D, "HTTP 204"),
        (408, R, "HTTP 408"),
        (429, R, "HTTP 429"),
        (500, R, "HTTP 500"),
        (503, R, "HTTP 503"),
        (400, P, "HTTP 400"),
        (401, P, "HTTP 401"),
        (404, P, "HTTP 404"),
        (410, P, "HTTP 410"),
        (301, P, "HTTP 301 (redirect not followed; point the template at the final URL)"),
        (302, P, "HTTP 302 (redirect not followed; point the template at the final URL)"),
        (101, P, "HTTP 101 (no final response)"),
    ],
)
def test_classify_status(status: int, verdict: Verdict, reason: str) -> None:
    result = classify_postback(status, None)
    assert (result.verdict, result.reason, result.retry_after_s) == (verdict, reason, None)


SECRET_URL = "https://ts.example/pb?token=SECRET"


@pytest.mark.parametrize(
    ("error", "verdict", "kind"),
    [
        (httpx.ReadTimeout(SECRET_URL), R, "ReadTimeout"),
        (httpx.ConnectTimeout(SECRET_URL), R, "ConnectTimeout"),
        (httpx.ConnectError(f"connection refused {SECRET_URL}"), R, "ConnectError"),
        (httpx.RemoteProtocolError(SECRET_URL), R, "RemoteProtocolError"),
        (httpx.UnsupportedProtocol(SECRET_URL), P, "UnsupportedProtocol"),
        (httpx.InvalidURL(SECRET_URL), P, "InvalidURL"),
        (ValueError(SECRET_URL), P, "ValueError"),
        (RuntimeError(SECRET_URL), P, "RuntimeError"),
    ],
)
def test_classify_error(error: Exception, verdict: Verdict, kind: str) -> None:
    result = classify_postback(None, error)
    assert result.verdict is verdict
    assert kind in result.reason
    assert "SECRET" not in result.reason and "ts.example" not in result.reason


def test_status_wins_over_error_and_nothing_is_permanent() -> None:
    assert classify_postback(200, httpx.ReadTimeout("body")).verdict is D
    assert classify_postback(None, None).verdict is P


FULL_WIDTH_LOCALHOST = "".join(chr(ord(c) + 0xFEE0) for c in "localhost")  # U+FF4C...


@pytest.mark.parametrize(
    ("template", "why"),
    [
        (f"http://{FULL_WIDTH_LOCALHOST}:8080/cb?c={{click_id}}", "InvalidURL"),
        ("http://xn--localhost-:8080/cb", "IDNAError"),
    ],
)
def test_a_host_no_request_can_reach_is_refused_at_save(template: str, why: str) -> None:
    assert template_problems(template) == [f"not a valid URL: the host cannot be sent to ({why})"]


def test_hosts_that_can_be_sent_to_are_kept() -> None:
    for template in (
        "https://xn--bcher-kva.example/cb?c={click_id}",
        "https://bücher.example/cb",
        "https://[2001:db8::1]:8443/cb?c={click_id}",
    ):
        assert template_problems(template) == [], template


@pytest.mark.parametrize("error", [UnicodeError("label empty or too long"), httpx.InvalidURL("x")])
def test_an_unsendable_host_fails_for_good_at_once(error: Exception) -> None:
    # Templates saved before the check above: no retry for 24 hours.
    assert classify_postback(None, error).verdict == Verdict.PERMANENT


@pytest.mark.parametrize("value", [".", ".."])
def test_a_dot_segment_in_a_value_stays_literal(value: str) -> None:
    url = expand(BASE + "/acct-123/{sub1}/postback", {"sub1": value})
    assert url == BASE + "/acct-123/" + "%2E" * len(value) + "/postback"
    assert httpx.URL(url).raw_path.startswith(b"/pb/acct-123/%2E")  # not resolved away
