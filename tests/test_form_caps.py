"""Issue 18 #2: every form is read by one capped reader (api/params.py `read_form`): a body
over its byte cap is refused before it is parsed (413, `body`), one over the field cap
before a field is decoded (400, `body`). The reproduction, a 1 MB form of 262,000 fields
sent to /codec/session, cost 0.15 s of the event loop per request; it now costs no parsing."""

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.requests import Request
from starlette.types import Message

from api.params import FORM_MAX_FIELDS, SIGN_IN_MAX_BYTES, decoded_pairs, read_form
from relay.core.errors import BadParameter, BodyTooLarge

REPRO = b"a=b&" * 262_000  # printf 'a=b&%.0s' $(seq 262000)


def _request(body: bytes, declared: bool = True) -> Request:
    """A POST of `body`, its length declared (as curl does) or not (chunked)."""
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if declared:
        headers.append((b"content-length", str(len(body)).encode()))
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request(scope, receive)


async def _fastest_refusal(read: Callable[[], Awaitable[Any]], error: type[Exception]) -> float:
    """The fastest of five refusals, in seconds."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        with pytest.raises(error) as refused:
            await read()
        best = min(best, time.perf_counter() - started)
        assert refused.value.args and getattr(refused.value, "param", None) == "body"
    return best


async def test_the_reproduction_is_refused_without_parsing() -> None:
    # Its length declared: refused before a byte is read.
    declared = await _fastest_refusal(
        lambda: read_form(_request(REPRO), SIGN_IN_MAX_BYTES), BodyTooLarge
    )
    # Chunked: refused once read, still unparsed.
    chunked = await _fastest_refusal(
        lambda: read_form(_request(REPRO, declared=False), SIGN_IN_MAX_BYTES), BodyTooLarge
    )
    assert declared < 0.002 and chunked < 0.005, (declared, chunked)


async def test_too_many_fields_are_refused_before_any_is_decoded() -> None:
    body = b"&".join(b"f%d=%%FF" % i for i in range(FORM_MAX_FIELDS + 1))  # invalid UTF-8
    with pytest.raises(BadParameter, match=f"more than {FORM_MAX_FIELDS} parameters") as refused:
        await read_form(_request(body), 64 * 1024)
    assert refused.value.param == "body"
    # Within the caps: each field's first value, strictly decoded.
    form = await read_form(_request(b"token=a%2Bb&next=%2Fui&token=second&&"), SIGN_IN_MAX_BYTES)
    assert form == {"token": "a+b", "next": "/ui"}
    with pytest.raises(BadParameter, match="not valid UTF-8"):
        await read_form(_request(b"token=%FF"), SIGN_IN_MAX_BYTES)


def test_decoded_pairs_counts_before_decoding() -> None:
    with pytest.raises(BadParameter, match="more than 2 parameters"):
        decoded_pairs(b"a=1&b=%FF&c=3", max_pairs=2)
    assert decoded_pairs(b"&a=1&&b=2&", max_pairs=2) == [("a", "1"), ("b", "2")]
